"""The parity harness itself: record comparison and the documented-difference rule."""

from __future__ import annotations

import pytest

from tests.parity.harness import assert_parity, differences, snake


def test_differences_lists_each_differing_path() -> None:
    a = {"x": 1, "events": [{"type": "a"}, {"type": "b"}], "only_a": 0}
    b = {"x": 1, "events": [{"type": "a"}, {"type": "c"}], "only_b": 0}
    assert differences(a, b) == ["events.1.type", "only_a", "only_b"]
    assert differences([1, 2], [1]) == [""]


def test_an_undocumented_difference_fails() -> None:
    with pytest.raises(AssertionError, match="differ at 1 path"):
        assert_parity({"a": 1}, {"a": 2})
    with pytest.raises(AssertionError, match="not documented"):
        assert_parity({"a": 1}, {"a": 2}, intended={"a": "no such phrase in the doc, really"})


def test_a_documented_difference_is_tolerated_under_its_path() -> None:
    assert_parity({"a": {"b": 1}, "c": 1}, {"a": {"b": 2}, "c": 1}, intended={"a": "What differs"})


def test_snake_case() -> None:
    assert snake("memberAssignment") == "member_assignment"
    assert snake("groupId") == "group_id"
    assert snake("topic") == "topic"
