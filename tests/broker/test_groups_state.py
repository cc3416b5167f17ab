"""The classic group state machine driven directly, with a fake clock (no sockets)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from klamm.broker.groups.group import ClassicGroup, Member
from klamm.broker.groups.state import GroupState, IllegalTransition
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch, crc_of
from tests.broker.groups_helpers import Harness, settle

S = GroupState
E = ErrorCode


@pytest.fixture
async def h(tmp_path: Path) -> Harness:
    harness = Harness(tmp_path)
    await harness.start()
    return harness


async def form_group(h: Harness, group: str, n: int, **kw: object) -> list[str]:
    """n members join together and the leader syncs; returns member ids (leader first)."""
    if kw.get("instance") is not None:  # static members skip MEMBER_ID_REQUIRED (KIP-345)
        tasks = [h.join(group, **kw) for _ in range(n)]  # type: ignore[arg-type]
    else:
        tasks = [await h.join_new(group, **kw) for _ in range(n)]  # type: ignore[arg-type]
    await h.clock.advance(250)
    results = [t.result() for t in tasks]
    assert all(r.error == E.none for r in results), results
    assert len({r.generation for r in results}) == 1
    leader = results[0].leader
    ids = [r.member_id for r in results]
    gen = results[0].generation
    syncs = [
        h.coordinator.sync_group(
            group,
            gen,
            m,
            kw.get("instance"),
            "consumer",
            "range",  # type: ignore[arg-type]
            {x: x.encode() for x in ids} if m == leader else {},
        )
        for m in sorted(ids, key=lambda m: m == leader)  # followers first: they park
    ]
    import asyncio

    out = await asyncio.gather(*syncs)
    assert all(r.error == E.none for r in out)
    assert h.coordinator.groups[group].state is S.STABLE
    h.check()
    return [leader] + [m for m in ids if m != leader]


def test_transition_table_is_kafkas() -> None:
    assert S.STABLE.valid_previous == {S.COMPLETING_REBALANCE}
    assert S.EMPTY.valid_previous == {S.PREPARING_REBALANCE}
    assert S.PREPARING_REBALANCE.valid_previous == {S.STABLE, S.COMPLETING_REBALANCE, S.EMPTY}
    group = ClassicGroup("g")
    with pytest.raises(IllegalTransition):
        group.transition(S.STABLE, 0)
    group.transition(S.PREPARING_REBALANCE, 0)
    group.transition(S.DEAD, 0)


def test_protocol_vote() -> None:
    group = ClassicGroup("g")
    prefs = [["roundrobin", "range"], ["range", "roundrobin"], ["range", "sticky"]]
    for i, names in enumerate(prefs):
        group.add(Member(f"m{i}", None, "c", "h", 1, 1, "consumer", [(n, b"") for n in names]))
    assert group.candidate_protocols() == ["range"]
    assert group.select_protocol() == "range"
    assert not group.supports("consumer", [("sticky", b"")])
    assert not group.supports("connect", [("range", b"")])


async def test_lone_member_gets_assignment_after_quiet_window_not_3s(h: Harness) -> None:
    task = await h.join_new("g")
    await h.clock.advance(150)
    assert not task.done(), "the quiet window is still open"
    await h.clock.advance(60)
    result = task.result()
    assert result.error == E.none and result.generation == 1
    assert result.leader == result.member_id
    assert [m[0] for m in result.members] == [result.member_id]
    assert h.coordinator.groups["g"].state is S.COMPLETING_REBALANCE


async def test_pending_member_holds_the_initial_phase(h: Harness) -> None:
    a = await h.join_new("g")
    pending = await h.join("g")  # got an id, has not rejoined yet
    assert pending.error == E.member_id_required
    await h.clock.advance(1000)
    assert not a.done(), "a known member has not joined: wait"
    b = h.join("g", pending.member_id)
    await h.clock.advance(250)
    assert a.result().generation == b.result().generation == 1
    assert len(a.result().members) + len(b.result().members) == 2


async def test_initial_delay_caps_a_stream_of_joiners(h: Harness) -> None:
    first = await h.join_new("g", rebalance_ms=5000)
    for _ in range(34):  # a new member every 150 ms keeps the quiet window open
        await h.join_new("g", rebalance_ms=5000)
        await h.clock.advance(150)
    # Kafka's 3 s initial delay, extended while members keep arriving, up to the rebalance
    # timeout (5 s): the phase ends even though the stream never stops.
    assert first.result().generation == 1


async def test_v3_join_needs_no_member_id(h: Harness) -> None:
    task = h.join("g", v4=False)
    await h.clock.advance(250)
    assert task.result().error == E.none


async def test_bad_joins(h: Harness) -> None:
    assert (await h.join("")).error == E.invalid_group_id
    assert (await h.join("g", session_ms=10)).error == E.invalid_session_timeout
    assert (await h.join("g", "nobody")).error == E.unknown_member_id
    await form_group(h, "g", 1)
    other = await h.join("g", protocol_type="connect")
    assert other.error == E.inconsistent_group_protocol
    other = await h.join("g", protocols=[("sticky", b"")])
    assert other.error == E.inconsistent_group_protocol
    h.check()


async def test_sync_and_heartbeat_errors(h: Harness) -> None:
    leader, follower = await form_group(h, "g", 2)
    c = h.coordinator
    assert c.heartbeat("g", 1, leader, None) == E.none
    assert c.heartbeat("g", 0, leader, None) == E.illegal_generation
    assert c.heartbeat("g", 1, "ghost", None) == E.unknown_member_id
    assert c.heartbeat("nope", 1, leader, None) == E.unknown_member_id
    assert (await c.sync_group("g", 7, leader, None, None, None, {})).error == E.illegal_generation
    bad = await c.sync_group("g", 1, leader, None, "consumer", "roundrobin", {})
    assert bad.error == E.inconsistent_group_protocol
    again = await c.sync_group("g", 1, follower, None, None, None, {})
    assert again.error == E.none and again.assignment == follower.encode()


async def test_third_member_triggers_rebalance_and_everyone_rejoins(h: Harness) -> None:
    leader, follower = await form_group(h, "g", 2)
    c = h.coordinator
    third = await h.join_new("g")
    assert c.groups["g"].state is S.PREPARING_REBALANCE
    assert c.heartbeat("g", 1, follower, None) == E.rebalance_in_progress
    # Commits with the current generation still work while revoking (eager clients).
    ok = await c.commit_offsets("g", 1, follower, None, {("orders", 0): (5, -1, "")})
    assert ok == {("orders", 0): E.none}
    rejoins = [h.join("g", leader), h.join("g", follower)]
    await settle()
    results = [t.result() for t in [*rejoins, third]]
    assert {r.generation for r in results} == {2}
    assert sum(len(r.members) for r in results) == 3
    assert c.groups["g"].state is S.COMPLETING_REBALANCE
    # Commits are refused until the assignment is out.
    busy = await c.commit_offsets("g", 2, leader, None, {("orders", 0): (6, -1, "")})
    assert busy == {("orders", 0): E.rebalance_in_progress}
    h.check()


async def test_dead_member_is_evicted_after_session_timeout(h: Harness) -> None:
    leader, follower = await form_group(h, "g", 2, session_ms=6000)
    c = h.coordinator
    for _ in range(5):  # the leader heartbeats, the follower is silent
        await h.clock.advance(1000)
        c.heartbeat("g", 1, leader, None)
    await h.clock.advance(1500)
    assert follower not in c.groups["g"].members
    assert c.heartbeat("g", 1, leader, None) == E.rebalance_in_progress
    alone = h.join("g", leader, session_ms=6000)
    await settle()
    result = alone.result()
    assert result.generation == 2 and [m[0] for m in result.members] == [leader]
    h.check()


async def test_member_that_never_rejoins_is_dropped_at_rebalance_timeout(h: Harness) -> None:
    leader, follower = await form_group(h, "g", 2, rebalance_ms=8000, session_ms=60_000)
    c = h.coordinator
    leader_rejoin = h.join("g", leader, rebalance_ms=8000, session_ms=60_000)
    await settle()
    assert not leader_rejoin.done()
    await h.clock.advance(8000)
    result = leader_rejoin.result()
    assert result.error == E.none and result.generation == 2
    assert follower not in c.groups["g"].members
    assert c.heartbeat("g", 1, follower, None) == E.unknown_member_id


async def test_leave_rebalances_and_last_leave_empties(h: Harness) -> None:
    leader, follower = await form_group(h, "g", 2)
    c = h.coordinator
    top, errors = c.leave_group("g", [(follower, None)])
    assert (top, errors) == (E.none, [E.none])
    assert c.leave_group("g", [("ghost", None)])[1] == [E.unknown_member_id]
    rejoin = h.join("g", leader)
    await settle()
    assert rejoin.result().generation == 2
    c.leave_group("g", [(leader, None)])
    await settle()
    assert c.groups["g"].state is S.EMPTY
    assert c.heartbeat("g", 2, leader, None) == E.unknown_member_id
    h.check()


async def test_static_member_restart_keeps_generation_and_fences_old_id(h: Harness) -> None:
    (old,) = await form_group(h, "g", 1, instance="i-1")
    c = h.coordinator
    restarted = await h.join("g", instance="i-1")  # a new process: no member id yet
    assert restarted.error == E.none
    assert restarted.generation == 1, "no rebalance"
    assert restarted.member_id != old
    assert c.groups["g"].state is S.STABLE
    assert c.heartbeat("g", 1, old, "i-1") == E.fenced_instance_id
    assert c.heartbeat("g", 1, restarted.member_id, "i-1") == E.none
    sync = await c.sync_group("g", 1, restarted.member_id, "i-1", None, None, {})
    assert sync.assignment == old.encode(), "it gets its partitions back"
    h.check()


async def test_batch_leave_of_static_members(h: Harness) -> None:
    a = h.join("g", instance="a")
    b = h.join("g", instance="b")
    await h.clock.advance(250)
    assert a.result().error == b.result().error == E.none
    c = h.coordinator
    _top, errors = c.leave_group("g", [("", "a"), ("", "b"), ("", "zzz"), ("wrong", "a")])
    assert errors == [E.none, E.none, E.unknown_member_id, E.unknown_member_id]
    await settle()
    assert c.groups["g"].state is S.EMPTY


async def test_offsets_commit_fetch_metadata_and_errors(h: Harness) -> None:
    c = h.coordinator
    commits = {("orders", 0): (10, 3, "ümlaut metadata"), ("orders", 1): (20, -1, None)}
    assert await c.commit_offsets("simple", -1, "", None, commits) == {
        ("orders", 0): E.none,
        ("orders", 1): E.none,
    }
    bad = await c.commit_offsets(
        "simple", -1, "", None, {("missing", 0): (1, -1, ""), ("orders", 9): (1, -1, "")}
    )
    assert set(bad.values()) == {E.unknown_topic_or_partition}
    big = await c.commit_offsets("simple", -1, "", None, {("orders", 2): (1, -1, "x" * 5000)})
    assert big == {("orders", 2): E.offset_metadata_too_large}
    stale = await c.commit_offsets("unknown", 3, "m", None, {("orders", 0): (1, -1, "")})
    assert stale == {("orders", 0): E.illegal_generation}
    [(_topic, rows)] = c.fetch_offsets("simple", [("orders", [0, 1, 5])], False)
    assert [(r.offset, r.leader_epoch, r.metadata) for r in rows] == [
        (10, 3, "ümlaut metadata"),
        (20, -1, ""),
        (-1, -1, ""),
    ]
    everything = c.fetch_offsets("simple", None, False)
    assert [(t, [r.partition for r in rows]) for t, rows in everything] == [("orders", [0, 1])]
    assert c.fetch_offsets("nobody", None, False) == []


async def test_a_commit_without_membership_into_an_active_group_is_unknown_member(
    h: Harness,
) -> None:
    """Kafka's validateOffsetCommit: with no member id and no generation (an admin, or an
    assign() consumer sharing the group id), commits are accepted only while the group is empty;
    otherwise UNKNOWN_MEMBER_ID (klamm answered ILLEGAL_GENERATION)."""
    leader, _follower = await form_group(h, "busy", 2)
    c = h.coordinator
    commit = {("orders", 0): (5, -1, "")}
    assert await c.commit_offsets("busy", -1, "", None, commit) == {
        ("orders", 0): E.unknown_member_id
    }
    assert await c.commit_offsets("busy", 1, leader, None, commit) == {("orders", 0): E.none}


async def test_state_and_offsets_survive_restart(h: Harness) -> None:
    leader, follower = await form_group(h, "g", 2)
    c = h.coordinator
    await c.commit_offsets("g", 1, leader, None, {("orders", 3): (42, 0, "meta")})
    c = await h.restart()
    group = c.groups["g"]
    assert group.state is S.STABLE and group.generation == 1
    assert set(group.members) == {leader, follower}
    assert c.heartbeat("g", 1, follower, None) == E.none, "members carry on after a restart"
    sync = await c.sync_group("g", 1, follower, None, None, None, {})
    assert sync.assignment == follower.encode()
    [(_, [row])] = c.fetch_offsets("g", [("orders", [3])], False)
    assert (row.offset, row.leader_epoch, row.metadata) == (42, 0, "meta")
    # A member that does not come back after the restart is evicted by its session timeout.
    for _ in range(12):
        await h.clock.advance(1000)
        c.heartbeat("g", group.generation, leader, None)
    assert follower not in c.groups["g"].members
    h.check()


async def test_an_unreadable_offsets_batch_is_skipped_at_start(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch whose records cannot be decoded (CRC intact, record count wrong) is skipped
    with an error naming its offset; the broker starts and keeps every readable offset."""
    c = h.coordinator
    await c.commit_offsets("solo", -1, "", None, {("orders", 0): (8, -1, "")})
    wrong_count = bytearray(build_batch(RecordBatch([Record(0, h.clock.now, b"k", b"v")])))
    struct.pack_into(">i", wrong_count, 23, 2)  # last offset delta
    struct.pack_into(">i", wrong_count, 57, 3)  # records count: claims three, holds one
    struct.pack_into(">I", wrong_count, 17, crc_of(wrong_count, 0, len(wrong_count)))
    offset = h.broker.partition("__consumer_offsets", 0).log.append(wrong_count).base_offset
    c = await h.restart()
    [(_, [row])] = c.fetch_offsets("solo", [("orders", [0])], False)
    assert row.offset == 8
    assert f"__consumer_offsets-0 at offset {offset}:" in caplog.text


async def test_empty_group_offsets_expire_after_retention(tmp_path: Path) -> None:
    h = Harness(tmp_path, offsets_retention_ms=60_000)
    c = await h.start()
    (leader,) = await form_group(h, "g", 1)
    await c.commit_offsets("g", 1, leader, None, {("orders", 0): (7, -1, "")})
    await c.commit_offsets("solo", -1, "", None, {("orders", 0): (8, -1, "")})
    c.leave_group("g", [(leader, None)])
    await settle()
    await h.clock.advance(30_000)
    assert await c.expire_offsets() == 0
    await h.clock.advance(31_000)
    assert await c.expire_offsets() == 2
    assert "g" not in c.groups and "solo" not in c.groups
    assert c.fetch_offsets("g", None, False) == []
    c = await h.restart()
    assert "g" not in c.groups and c.fetch_offsets("solo", None, False) == []


async def test_delete_groups(h: Harness) -> None:
    c = h.coordinator
    await form_group(h, "busy", 1)
    await c.commit_offsets("idle", -1, "", None, {("orders", 0): (1, -1, "")})
    result = await c.delete_groups(["busy", "idle", "ghost", ""])
    assert result == [E.non_empty_group, E.none, E.group_id_not_found, E.invalid_group_id]
    assert "idle" not in c.groups
    c = await h.restart()
    assert "idle" not in c.groups and c.fetch_offsets("idle", None, False) == []


async def test_transactional_offsets(h: Harness) -> None:
    c = h.coordinator
    errors = await c.prepare_txn_offsets("g", 7, 0, {("orders", 0): (100, -1, "txn")})
    assert errors == {("orders", 0): E.none}
    [(_, [row])] = c.fetch_offsets("g", [("orders", [0])], True)
    assert row.error == E.unstable_offset_commit
    [(_, [row])] = c.fetch_offsets("g", [("orders", [0])], False)
    assert row.offset == -1, "not visible before the commit"
    await c.prepare_txn_offsets("g", 8, 0, {("orders", 1): (5, -1, "")})
    c = await h.restart()  # pending state is replayed
    [(_, [row])] = c.fetch_offsets("g", [("orders", [0])], True)
    assert row.error == E.unstable_offset_commit
    await c.complete_txn_offsets(7, True)
    await c.complete_txn_offsets(8, False)
    [(_, rows)] = c.fetch_offsets("g", [("orders", [0, 1])], True)
    assert [(r.offset, r.error) for r in rows] == [(100, E.none), (-1, E.none)]
    c = await h.restart()
    [(_, rows)] = c.fetch_offsets("g", [("orders", [0, 1])], True)
    assert [r.offset for r in rows] == [100, -1]


async def test_offset_delete_refuses_subscribed_topics(h: Harness) -> None:
    c = h.coordinator
    sub = b"\x00\x01" + b"\x00\x00\x00\x01" + b"\x00\x06orders" + b"\x00\x00\x00\x00"
    (leader,) = await form_group(h, "g", 1, protocols=[("range", sub)])
    await c.commit_offsets("g", 1, leader, None, {("orders", 0): (1, -1, "")})
    top, errors = await c.delete_offsets("g", [("orders", 0)])
    assert (top, errors) == (E.none, {("orders", 0): E.group_subscribed_to_topic})
    assert (await c.delete_offsets("ghost", []))[0] == E.group_id_not_found
    c.leave_group("g", [(leader, None)])
    await settle()
    top, errors = await c.delete_offsets("g", [("orders", 0)])
    assert errors == {("orders", 0): E.none}
    assert c.fetch_offsets("g", None, False) == []


async def test_describe_and_list(h: Harness) -> None:
    c = h.coordinator
    leader, follower = await form_group(h, "g", 2)
    await c.commit_offsets("solo", -1, "", None, {("orders", 0): (1, -1, "")})
    summary = c.describe_group("g")
    assert (summary.state, summary.protocol_type, summary.protocol) == (
        "Stable",
        "consumer",
        "range",
    )
    assert {m["member_assignment"] for m in summary.members} == {leader.encode(), follower.encode()}
    assert c.describe_group("ghost").state == "Dead"
    assert sorted(c.list_groups([])) == [
        ("g", "consumer", "Stable"),
        ("solo", "", "Empty"),
    ]
    assert c.list_groups(["empty"]) == [("solo", "", "Empty")]


async def test_stable_group_loses_offsets_of_topics_it_no_longer_reads(tmp_path: Path) -> None:
    """KIP-211: a live consumer group keeps offsets of its subscribed topics forever and loses
    the others offsets.retention after their commit."""
    import struct

    subscription = struct.pack(">hih", 0, 1, len(b"orders")) + b"orders" + struct.pack(">i", -1)
    h = Harness(tmp_path, offsets_retention_ms=60_000)
    c = await h.start()
    h.broker.create_topic("old-topic", 1)
    (member,) = await form_group(
        h, "live", 1, protocols=[("range", subscription)], session_ms=600_000
    )
    offsets = {("orders", 0): (7, -1, ""), ("old-topic", 0): (3, -1, "")}
    await c.commit_offsets("live", 1, member, None, offsets)
    assert set(c.offsets.of_group("live")) == {("orders", 0), ("old-topic", 0)}
    assert c.groups["live"].subscribed_topics() == frozenset({"orders"})
    await h.clock.advance(59_000)
    assert await c.expire_offsets() == 0
    await h.clock.advance(2_000)
    assert await c.expire_offsets() == 1
    assert set(c.offsets.of_group("live")) == {("orders", 0)}
