"""Differential tests against KafkaJS itself: one scenario, two clients, one broker.

A parity test runs a scenario twice against the same klamm broker: once as a KafkaJS 2.2.4 script
under node (`js/<name>.js`), once with klamm's client in Python. Each run returns a *record*: JSON
of what a user observes (messages delivered per member, committed offsets after each step, the
event sequence with payload keys, errors raised, what another member sees). The test asserts the
two records are equal, except at paths listed as intended differences, each of which must be
explained in docs/kafkajs.md ("What differs"): an undocumented difference fails the test.

Both sides write records in the same vocabulary: snake_case keys (the JS side converts KafkaJS's
camelCase with `snake()` from js/lib.js, the Python side with `snake()` here), offsets as ints,
bytes as UTF-8 text. Use fresh topic and group names per scenario and per client (the `names`
fixture), so the two runs do not see each other's offsets.

    async def test_seek_then_restart(parity_broker, kafkajs, names):
        js = kafkajs("consumer_seek.js", {"topic": names("t"), "group": names("g")})
        py = await seek_scenario(parity_broker.bootstrap, names("t"), names("g"))
        assert_parity(js, py, intended={"events.x": "what differs text in docs/kafkajs.md"})

KafkaJS is the copy installed for tests/interop (tests/interop/js/node_modules); node finds it
through NODE_PATH. Missing node or KafkaJS skips the tests, and fails them under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from klamm.testing import EmbeddedBroker

PARITY_DIR = Path(__file__).parent
JS_DIR = PARITY_DIR / "js"
NODE_MODULES = PARITY_DIR.parent / "interop" / "js" / "node_modules"
DOC = PARITY_DIR.parent.parent / "docs" / "kafkajs.md"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Groups rebalance at once: Kafka's 3 s initial rebalance delay only slows scenarios down.
BROKER_SETTINGS: dict[str, Any] = {"group_initial_rebalance_delay_ms": 0}
# A scenario joins groups, rebalances and restarts consumers: tens of seconds at worst.
SCRIPT_TIMEOUT_S = 90.0


def snake(name: str) -> str:
    """KafkaJS's camelCase key as klamm's snake_case one: memberAssignment -> member_assignment."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def run_kafkajs(script: str, args: Mapping[str, Any], timeout: float = SCRIPT_TIMEOUT_S) -> Any:
    """Run js/<script> with `args` as JSON on stdin; return the last JSON line it printed."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed")
    proc = subprocess.run(
        [node, str(JS_DIR / script)],
        input=json.dumps(args),
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES), "KAFKAJS_NO_PARTITIONER_WARNING": "1"},
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
            f"stderr:\n{proc.stderr[-4000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{script} printed no JSON result; stderr:\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1])


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths (dotted; list items by index) where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                found.append(sub)
            else:
                found.extend(differences(a[key], b[key], sub))
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [path]
        found = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found.extend(differences(x, y, f"{path}.{i}" if path else str(i)))
        return found
    return [] if a == b else [path]


def _covered(path: str, prefixes: Mapping[str, str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def documented_differences() -> str:
    """The "What differs" section of docs/kafkajs.md, where every intended difference lives."""
    text = DOC.read_text(encoding="utf-8")
    start = text.find("## What differs")
    assert start >= 0, f"{DOC} has no '## What differs' section"
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def assert_parity(kafkajs: Any, klamm: Any, intended: Mapping[str, str] | None = None) -> None:
    """The two records are equal except under the `intended` paths.

    `intended` maps a record path (a prefix: "events.heartbeat" covers "events.heartbeat.0") to
    a phrase that docs/kafkajs.md's "What differs" section must contain: the reason, written
    where users read it."""
    intended = dict(intended or {})
    section = " ".join(documented_differences().split())
    for path, phrase in intended.items():
        assert " ".join(phrase.split()) in section, (
            f"intended difference {path!r} is not documented: add {phrase!r} to the "
            f"'What differs' section of {DOC}"
        )
    unexplained = [p for p in differences(kafkajs, klamm) if not _covered(p, intended)]
    if unexplained:
        lines = [f"KafkaJS and klamm differ at {len(unexplained)} path(s):"]
        for path in unexplained[:20]:
            lines.append(f"  {path}: kafkajs={_at(kafkajs, path)!r} klamm={_at(klamm, path)!r}")
        lines.append(f"kafkajs record: {json.dumps(kafkajs, sort_keys=True)[:3000]}")
        lines.append(f"klamm record:   {json.dumps(klamm, sort_keys=True)[:3000]}")
        raise AssertionError("\n".join(lines))


def _at(record: Any, path: str) -> Any:
    for part in path.split(".") if path else []:
        if isinstance(record, list):
            record = record[int(part)] if int(part) < len(record) else "<missing>"
        elif isinstance(record, dict):
            record = record.get(part, "<missing>")
    return record


# -- fixtures (imported by tests/parity/conftest.py) -------------------------------------------


@pytest.fixture(scope="module")
def parity_broker() -> Iterator[EmbeddedBroker]:
    """A broker of this module's own, so a scenario's group timings are not shared."""
    with EmbeddedBroker(**BROKER_SETTINGS) as broker:
        yield broker


@pytest.fixture(scope="session")
def kafkajs() -> Callable[..., Any]:
    """`kafkajs(script, args)`: runs a KafkaJS scenario (see run_kafkajs)."""
    if shutil.which("node") is None or not (NODE_MODULES / "kafkajs").is_dir():
        message = f"node and KafkaJS are needed (npm ci in {NODE_MODULES.parent})"
        if IN_CI:
            pytest.fail(f"{message}; required under CI=true")
        pytest.skip(message)
    return run_kafkajs


@pytest.fixture
def names() -> Callable[[str], str]:
    """`names("t")`: a fresh topic or group name (`t-<random>`) on every call."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"
