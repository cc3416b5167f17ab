"""RegistryState's invariants (state.py): replay is the only mutation, ids never change meaning,
and a new id is above every id ever seen."""

from __future__ import annotations

from klamm.schema import records
from klamm.schema.records import SchemaRecord
from klamm.schema.state import RegistryState


def _put(state: RegistryState, rec: SchemaRecord) -> None:
    state.replay(records.schema_key(rec.subject, rec.version), records.encode_value(rec.value()))


def test_an_id_is_never_rebound_to_other_content() -> None:
    state = RegistryState()
    _put(state, SchemaRecord("a", 1, 7, '"int"'))
    _put(state, SchemaRecord("b", 1, 7, '"string"'))  # a foreign writer's bug: skipped
    content = state.schema(7)
    assert content is not None and content.schema == '"int"'
    assert state.versions("b") == []
    _put(state, SchemaRecord("b", 1, 7, '"int"'))  # the same content under another subject
    assert [r.subject for r in state.usages(7)] == ["a", "b"]


def test_next_id_stays_above_hard_deleted_ids() -> None:
    state = RegistryState()
    _put(state, SchemaRecord("a", 1, 41, '"int"'))
    state.replay(records.schema_key("a", 1), None)  # hard delete
    assert state.versions("a", deleted=True) == []
    assert state.next_id() == 42


def test_delete_and_clear_subject_records() -> None:
    state = RegistryState()
    for version in (1, 2, 3):
        _put(state, SchemaRecord("s", version, version, f'"v{version}"'))
    state.replay(records.delete_subject_key("s"), b'{"subject":"s","version":2}')
    assert [r.version for r in state.versions("s")] == [3]
    state.replay(records.clear_subject_key("s"), b'{"subject":"s"}')
    assert [r.version for r in state.versions("s", deleted=True)] == [3]


def test_config_mode_and_noop_records() -> None:
    state = RegistryState()
    state.replay(records.config_key(None), b'{"compatibilityLevel":"FULL"}')
    state.replay(records.config_key("s"), b'{"compatibilityLevel":"NONE"}')
    state.replay(records.mode_key(None), b'{"mode":"READONLY"}')
    state.replay(b'{"keytype":"NOOP","magic":0}', None)
    assert (state.config(None), state.config("s"), state.mode(None)) == ("FULL", "NONE", "READONLY")
    state.replay(records.config_key("s"), None)
    assert state.config("s") is None


def test_malformed_records_are_skipped() -> None:
    state = RegistryState()
    for key, value in [
        (b"\xff\xfe", b"{}"),
        (b"[]", b"{}"),
        (records.schema_key("s", 1), b'{"subject": "s"}'),
        (records.schema_key("s", 1), b"not json"),
        (None, b"{}"),
    ]:
        state.replay(key, value)
    assert state.subjects(deleted=True) == [] and state.next_id() == 1
