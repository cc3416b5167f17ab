"""kcat (Debian's 1.7.1 on librdkafka 2.0.2) against klamm: -P/-C byte-exact, codecs, -L, -Q, -o.

kcat has no pause/resume and no topic admin beyond metadata (-L): topics are created by producing
to them (auto-create) or through confluent's AdminClient. Header values go through the command
line (-H), so they are text; keys and values go through stdin and are byte-exact.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.interop.interop_helpers import CODECS, Record, assert_compressed, assert_same_records

pytestmark = pytest.mark.timeout(60)

KEY_SEP = b"<<<KEY>>>"
MSG_SEP = b"<<<SEP>>>"
FAST = ["-X", "socket.timeout.ms=10000", "-X", "fetch.wait.max.ms=100"]


def run(kcat: str, args: list[str], stdin: bytes = b"", timeout: float = 30) -> bytes:
    proc = subprocess.run(
        [kcat, *args], input=stdin, capture_output=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"kcat {args} exited {proc.returncode}: {proc.stderr!r}"
    return proc.stdout


def produce(
    kcat: str,
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes | None, bytes]],
    *,
    headers: list[str] = (),  # type: ignore[assignment]
    null_empty: bool = False,
    partition: int | None = 0,
    extra: list[str] = (),  # type: ignore[assignment]
) -> None:
    """One `kcat -P` run: messages are (key or None for 'no key delimiter', value) pairs."""
    payload = MSG_SEP.join(v if k is None else k + KEY_SEP + v for k, v in messages)
    args = ["-b", bootstrap, "-P", "-t", topic, "-D", MSG_SEP.decode()]
    if any(k is not None for k, _ in messages):
        args += ["-K", KEY_SEP.decode()]
    if partition is not None:
        args += ["-p", str(partition)]
    if null_empty:
        args.append("-Z")  # empty key / value => NULL
    for header in headers:
        args += ["-H", header]
    run(kcat, [*args, *FAST, *extra], payload)


def consume(
    kcat: str,
    bootstrap: str,
    topic: str,
    offset: str = "beginning",
    count: int | None = None,
    partition: int = 0,
) -> list[dict[str, Any]]:
    """Byte-exact key/value via a length-prefixed -f format, headers/timestamps via -J."""
    base = ["-b", bootstrap, "-C", "-t", topic, "-p", str(partition), "-o", offset, *FAST]
    base += ["-c", str(count)] if count is not None else ["-e"]
    raw = run(kcat, [*base, "-f", "MSG %o %T %K %S\n%k%s\n"])
    out: list[dict[str, Any]] = []
    pos = 0
    while pos < len(raw):
        eol = raw.index(b"\n", pos)
        tag, offset_s, ts_s, klen_s, vlen_s = raw[pos:eol].split(b" ")
        assert tag == b"MSG"
        pos = eol + 1
        klen, vlen = int(klen_s), int(vlen_s)
        key = raw[pos : pos + max(klen, 0)] if klen >= 0 else None
        pos += max(klen, 0)
        value = raw[pos : pos + max(vlen, 0)] if vlen >= 0 else None
        pos += max(vlen, 0)
        assert raw[pos : pos + 1] == b"\n"
        pos += 1
        out.append({"offset": int(offset_s), "ts": int(ts_s), "key": key, "value": value})
    # -J copies binary keys/values verbatim (not valid UTF-8): only its headers are used.
    as_json = [
        json.loads(line.decode("utf-8", "replace"))
        for line in run(kcat, [*base, "-J"]).splitlines()
        if line
    ]
    assert [j["offset"] for j in as_json] == [m["offset"] for m in out]
    for m, j in zip(out, as_json, strict=True):
        hs = j.get("headers") or []
        m["headers"] = [(hs[i], hs[i + 1].encode()) for i in range(0, len(hs), 2)]
    return out


def as_records(msgs: list[dict[str, Any]]) -> list[Record]:
    return [(m["key"], m["value"], m["headers"]) for m in msgs]


def test_keyed_produce_consume_byte_exact(kcat: str, bootstrap: str, unique: str) -> None:
    topic = f"kcat-rt-{unique}"  # auto-created by the first produce
    binary = bytes(range(256))
    numbered = [(f"key-{i % 3}".encode(), f"value-{i:04d}".encode()) for i in range(100)]
    steps: list[tuple[list[tuple[bytes | None, bytes]], dict[str, Any], list[Record]]] = [
        ([(b"k0", b"v0")], {"headers": ["h1=x"]}, [(b"k0", b"v0", [("h1", b"x")])]),
        ([(b"k1", b"")], {"null_empty": True}, [(b"k1", None, [])]),
        ([(b"k2", b"")], {"headers": ["empty="]}, [(b"k2", b"", [("empty", b"")])]),
        ([(None, b"null key")], {}, [(None, b"null key", [])]),
        (
            [(b"", b"empty key")],
            {"headers": ["dup=1", "dup=2", "other=3"]},
            [(b"", b"empty key", [("dup", b"1"), ("dup", b"2"), ("other", b"3")])],
        ),
        ([(b"\x00\xff" * 8, binary)], {}, [(b"\x00\xff" * 8, binary, [])]),
        ([(b"", b"")], {"null_empty": True}, [(None, None, [])]),
        (
            [(b"k-utf8", "grüße €".encode())],
            {"headers": ["schlüssel=wert ✓"]},
            [(b"k-utf8", "grüße €".encode(), [("schlüssel", "wert ✓".encode())])],
        ),
        (numbered, {}, [(k, v, []) for k, v in numbered]),
    ]
    expected: list[Record] = []
    for messages, options, records in steps:
        produce(kcat, bootstrap, topic, messages, **options)
        expected += records
    msgs = consume(kcat, bootstrap, topic)
    assert [m["offset"] for m in msgs] == list(range(len(expected)))
    assert_same_records(as_records(msgs), expected)


@pytest.mark.parametrize("codec", CODECS)
def test_compression_round_trip(
    kcat: str, bootstrap: str, data_dir: Path, topic_factory: Callable[..., str], codec: str
) -> None:
    topic = topic_factory(1)
    messages = [
        (f"k{i}".encode(), (f"compressible payload {i} " * 20).encode()) for i in range(300)
    ]
    produce(kcat, bootstrap, topic, messages, extra=["-z", codec, "-X", "linger.ms=50"])
    msgs = consume(kcat, bootstrap, topic)
    assert_same_records(as_records(msgs), [(k, v, []) for k, v in messages])
    assert_compressed(data_dir, topic, codec)


def test_metadata_list(
    kcat: str, bootstrap: str, unique: str, topic_factory: Callable[..., str]
) -> None:
    created = topic_factory(3)
    auto = f"kcat-auto-{unique}"
    produce(kcat, bootstrap, auto, [(None, b"hello")], partition=None)

    md = json.loads(run(kcat, ["-b", bootstrap, "-L", "-J"]))
    assert [b["id"] for b in md["brokers"]] == [md["controllerid"]]
    assert md["brokers"][0]["name"] == bootstrap
    topics = {t["topic"]: t for t in md["topics"]}
    assert [p["partition"] for p in topics[created]["partitions"]] == [0, 1, 2]
    assert all(p["leader"] == md["controllerid"] for p in topics[created]["partitions"])
    assert len(topics[auto]["partitions"]) == 1  # num.partitions default

    one = json.loads(run(kcat, ["-b", bootstrap, "-L", "-J", "-t", created]))
    assert [t["topic"] for t in one["topics"]] == [created]

    text = run(kcat, ["-b", bootstrap, "-L"]).decode()
    assert f'topic "{created}" with 3 partitions' in text


def test_offsets_earliest_latest_by_timestamp(kcat: str, bootstrap: str, unique: str) -> None:
    topic = f"kcat-offsets-{unique}"
    produce(kcat, bootstrap, topic, [(None, f"m{i}".encode()) for i in range(5)])
    time.sleep(0.05)
    produce(kcat, bootstrap, topic, [(None, f"m{i}".encode()) for i in range(5, 8)])
    msgs = consume(kcat, bootstrap, topic)
    stamps = [m["ts"] for m in msgs]
    assert stamps[5] > stamps[4], f"the second run got later timestamps: {stamps}"

    def query(ts: int) -> int:
        out = json.loads(run(kcat, ["-b", bootstrap, "-Q", "-t", f"{topic}:0:{ts}", "-J"]))
        return int(out[topic]["0"]["offset"])

    assert query(-2) == 0  # earliest
    assert query(-1) == 8  # latest
    assert query(stamps[5]) == 5
    assert query(stamps[4] + 1) == 5
    assert query(stamps[0]) == 0
    assert query(stamps[-1] + 60_000) == -1

    from_ts = consume(kcat, bootstrap, topic, offset=f"s@{stamps[5]}")
    assert [m["value"] for m in from_ts] == [b"m5", b"m6", b"m7"]
    last_two = consume(kcat, bootstrap, topic, offset="-2")
    assert [m["offset"] for m in last_two] == [6, 7]
    assert consume(kcat, bootstrap, topic, offset="end") == []


def test_seek_and_replay(kcat: str, bootstrap: str, unique: str) -> None:
    topic = f"kcat-seek-{unique}"
    produce(kcat, bootstrap, topic, [(None, f"m{i}".encode()) for i in range(20)])
    first = consume(kcat, bootstrap, topic)
    assert [m["value"] for m in first] == [f"m{i}".encode() for i in range(20)]
    assert [m["offset"] for m in consume(kcat, bootstrap, topic, offset="5", count=3)] == [5, 6, 7]
    assert [m["offset"] for m in consume(kcat, bootstrap, topic, offset="17")] == [17, 18, 19]
    replay = consume(kcat, bootstrap, topic)
    assert [m["value"] for m in replay] == [m["value"] for m in first]
