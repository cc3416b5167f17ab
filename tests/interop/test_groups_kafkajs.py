"""Consumer groups with KafkaJS 2.2.4 against klamm (js/groups_kafkajs.js)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.interop.interop_helpers import NodeRunner

pytestmark = pytest.mark.timeout(120)


def test_kafkajs_group_split_leave_resume_describe(
    node: NodeRunner, bootstrap: str, unique: str
) -> None:
    out: dict[str, Any] = node(
        "groups_kafkajs.js",
        {"brokers": [bootstrap], "topic": f"js-{unique}", "group": f"g-{unique}"},
        timeout=100,
    )
    a, b = out["split"]
    assert len(a) == len(b) == 3 and sorted(a + b) == list(range(6))
    assert out["describe"]["state"] == "Stable"
    assert out["describe"]["members"] == 2
    assert all(n > 0 for n in out["describe"]["assignmentBytes"])
    assert out["offsetsBefore"] == [[p, 2] for p in range(6)]
    assert out["seen"] == 18
    assert out["resumed"] == [3] * 6, "resumed exactly after the committed offsets"
    assert out["other"] == 24
    assert out["listed"]
    assert out["offsetsAfter"] == [4] * 6
