"""Turning Kafka bytes into HTML, safely: every piece of cluster data reaches the page escaped.

Templates autoescape; the two helpers here that build HTML themselves (`json_html`, `chart_svg`)
escape every value with markupsafe before wrapping it in tags, so a message value of
`<script>...` is text on the page, never script (tested in a real browser).
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

# A hex view longer than this is cut (with a note): 4 KiB of hex is 12 K characters, already
# more than anyone reads; the download gives the whole value.
HEX_LIMIT = 4096
# JSON nested deeper than this is shown flat: recursion in the renderer stays bounded whatever
# a producer wrote.
JSON_DEPTH_LIMIT = 32


@dataclass(frozen=True)
class Shown:
    """One key or value, in every view the page can switch between."""

    kind: str  # "null", "json", "text" or "hex": the view chosen automatically
    text: str | None  # the UTF-8 text, when the bytes are UTF-8
    json: Any  # the parsed document, when kind == "json"
    hex: str
    size: int


def shown(data: bytes | None) -> Shown:
    if data is None:
        return Shown("null", None, None, "", 0)
    hex_text = data[:HEX_LIMIT].hex(" ")
    if len(data) > HEX_LIMIT:
        hex_text += f" ... ({len(data) - HEX_LIMIT} more bytes)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Shown("hex", None, None, hex_text, len(data))
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            return Shown("json", text, json.loads(text), hex_text, len(data))
        except (ValueError, RecursionError):
            pass
    printable = all(c.isprintable() or c in "\n\r\t" for c in text)
    return Shown("text" if printable else "hex", text, None, hex_text, len(data))


def json_html(value: Any, depth: int = 0) -> Markup:
    """Pretty JSON as nested <details>: objects and arrays fold open and closed."""
    if depth >= JSON_DEPTH_LIMIT:
        return Markup('<span class="j-s">{}</span>').format(json.dumps(value))
    if isinstance(value, dict):
        if not value:
            return Markup('<span class="j-p">{}</span>')
        items = Markup("").join(
            Markup('<li><span class="j-k">{}</span>: {}</li>').format(
                json.dumps(k), json_html(v, depth + 1)
            )
            for k, v in value.items()
        )
        return Markup(
            '<details open class="j"><summary>{{ <span class="j-n">{}</span></summary>'
            "<ul>{}</ul>}}</details>"
        ).format(_count(len(value), "key"), items)
    if isinstance(value, list):
        if not value:
            return Markup('<span class="j-p">[]</span>')
        items = Markup("").join(
            Markup("<li>{}</li>").format(json_html(v, depth + 1)) for v in value
        )
        return Markup(
            '<details open class="j"><summary>[ <span class="j-n">{}</span></summary>'
            "<ul>{}</ul>]</details>"
        ).format(_count(len(value), "item"), items)
    if isinstance(value, str):
        return Markup('<span class="j-s">{}</span>').format(json.dumps(value))
    return Markup('<span class="j-v">{}</span>').format(json.dumps(value))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def header_text(value: bytes | None) -> str:
    if value is None:
        return "null"
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + value.hex()


def fmt_ts(ms: int) -> str:
    if ms <= 0:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime(
        "%Y-%m-%d %H:%M:%S.%f"
    )[:-3]


def fmt_count(n: float | None) -> str:
    if n is None:
        return "-"
    if n < 0:
        return "?"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.1f}"
    return f"{int(n):,}"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n} B"


def chart_svg(
    points: Sequence[tuple[float, float]],
    *,
    label: str,
    unit: str,
    width: int = 360,
    height: int = 90,
) -> Markup:
    """A line chart as inline SVG, drawn on the server: no chart library, works without
    JavaScript, and `label` gives screen readers the latest value in words."""
    if len(points) < 2:
        return Markup(
            '<svg class="chart" role="img" aria-label="{}: not enough samples yet" '
            'viewBox="0 0 {} {}"></svg><p class="chart-cap">collecting samples...</p>'
        ).format(label, width, height)
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    top = max(ys) or 1.0
    pad = 4

    def x(v: float) -> float:
        return pad + (v - x0) / ((x1 - x0) or 1) * (width - 2 * pad)

    def y(v: float) -> float:
        return height - pad - v / top * (height - 2 * pad - 12)

    line = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in points)
    area = f"{x(x0):.1f},{height - pad} {line} {x(x1):.1f},{height - pad}"
    latest = ys[-1]
    peak = f"{top:,.1f}" if not math.isclose(top, round(top)) else f"{int(top):,}"
    return Markup(
        '<svg class="chart" role="img" aria-label="{label}: now {now} {unit}, peak {peak}" '
        'viewBox="0 0 {w} {h}" preserveAspectRatio="none">'
        '<polygon class="chart-area" points="{area}"/>'
        '<polyline class="chart-line" points="{line}"/></svg>'
        '<p class="chart-cap" aria-hidden="true">now {now} · peak {peak} {unit}</p>'
    ).format(
        label=label,
        now=fmt_count(latest),
        unit=unit,
        peak=peak,
        w=width,
        h=height,
        area=area,
        line=line,
    )


# -- filters ----------------------------------------------------------------------------------


class FilterError(ValueError):
    pass


_MISSING = object()


# `$.a.b[0]['c d']`: names after dots, indexes and quoted names in brackets (a JSONPath subset:
# enough to pick a field, never a query language that could make a scan expensive).
_PATH = re.compile(r"(?:\.([A-Za-z0-9_\-]+)|\[(-?\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\])")


def json_path_get(document: Any, path: str) -> Any:
    """`$.a.b[0].c` of a parsed document; _MISSING when a step does not exist; FilterError
    for a path that is not one."""
    if not path.startswith("$"):
        raise FilterError(f"a JSON path starts with $, not {path[:1]!r}")
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        match = _PATH.match(path, position)
        if match is None:
            raise FilterError(f"cannot read the JSON path {path!r} at {path[position:]!r}")
        name, index, quoted1, quoted2 = match.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(next(v for v in (name, quoted1, quoted2) if v is not None))
        position = match.end()
    node = document
    for step in steps:
        in_list = (
            isinstance(step, int) and isinstance(node, list) and -len(node) <= step < len(node)
        )
        in_dict = isinstance(step, str) and isinstance(node, dict) and step in node
        if in_list or in_dict:
            node = node[step]
        else:
            return _MISSING
    return node


def value_matches(data: bytes | None, query: str) -> bool:
    """`query` is a substring, or `$.path` (the path exists) or `$.path=literal` (equals a JSON
    literal, or the string when it is not one)."""
    if not query:
        return True
    if data is None:
        return False
    if not query.startswith("$"):
        return query.encode() in data
    path, sep, literal = query.partition("=")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return False
    found = json_path_get(document, path.strip())
    if found is _MISSING:
        return False
    if not sep:
        return True
    literal = literal.strip()
    try:
        wanted = json.loads(literal)
    except ValueError:
        wanted = literal
    return bool(found == wanted)
