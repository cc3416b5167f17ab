"""What a principal with some ACLs gets, API by API, as Kafka's KafkaApis answers it (issue 13);
and the `*_authorized_operations` Kafka reports with and without an authorizer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.checks import SUPPORTED_OPERATIONS
from klamm.broker.authorizer.model import Operation, PatternType, ResourceType
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.authz_helpers import authorizing_broker, create_acl, login
from tests.broker.broker_helpers import create_topics, on_loop, one_record_batch
from tests.broker.wire import Wire

USERS = {"admin": "a", "alice": "b", "bob": "c"}
ZERO_UUID = uuid.UUID(int=0)
INT32_MIN = -(2**31)


def _bits(resource_type: ResourceType) -> int:
    return sum(1 << op for op in SUPPORTED_OPERATIONS[resource_type])


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with authorizing_broker(USERS) as b:
        with Wire(b.bootstrap) as wire:
            login(wire, "admin", USERS["admin"])
            create_topics(wire, "readable", "writable", "secret", partitions=2)
            alice = "User:alice"
            create_acl(wire, ResourceType.TOPIC, "readable", alice, Operation.READ)
            create_acl(wire, ResourceType.TOPIC, "writable", alice, Operation.WRITE)
            create_acl(wire, ResourceType.GROUP, "alices", alice, Operation.READ)
            # A producer that auto-creates: WRITE (which implies the DESCRIBE Metadata asks
            # first) and CREATE, both on a prefix.
            for operation in (Operation.CREATE, Operation.WRITE):
                create_acl(wire, ResourceType.TOPIC, "auto-", alice, operation,
                           pattern=PatternType.PREFIXED)  # fmt: skip
            for group in ("alices", "others"):
                answer = wire.request(
                    ApiKey.OFFSET_COMMIT, 8, group_id=group, generation_id_or_member_epoch=-1,
                    member_id="", group_instance_id=None,
                    topics=[{"name": name, "partitions": [
                        {"partition_index": 0, "committed_offset": 0, "committed_leader_epoch": -1,
                         "committed_metadata": ""}]} for name in ("readable", "secret")],
                )  # fmt: skip
                assert {p.error_code for t in answer.topics for p in t.partitions} == {0}
        yield b


def _as(broker: EmbeddedBroker, user: str) -> Wire:
    wire = Wire(broker.bootstrap)
    login(wire, user, USERS[user])
    return wire


def _produce(wire: Wire, *topics: str) -> dict[str, ErrorCode]:
    answer = wire.request(
        ApiKey.PRODUCE, 9, transactional_id=None, acks=-1, timeout=5000,
        topic_data=[{"name": name, "partition_data": [
            {"index": i, "records": one_record_batch()} for i in (0, 1)]} for name in topics],
    )  # fmt: skip
    return {
        f"{t.name}-{p.index}": p.error_code for t in answer.responses for p in t.partition_responses
    }


def test_produce_needs_write_per_topic(broker: EmbeddedBroker) -> None:
    with _as(broker, "alice") as wire:
        assert _produce(wire, "writable", "readable", "missing") == {
            "writable-0": ErrorCode.none, "writable-1": ErrorCode.none,
            "readable-0": ErrorCode.topic_authorization_failed,
            "readable-1": ErrorCode.topic_authorization_failed,
            # Not UNKNOWN_TOPIC_OR_PARTITION: existence is not disclosed.
            "missing-0": ErrorCode.topic_authorization_failed,
            "missing-1": ErrorCode.topic_authorization_failed,
        }  # fmt: skip


def test_fetch_needs_read_and_still_serves_the_readable(broker: EmbeddedBroker) -> None:
    with _as(broker, "admin") as wire:
        assert set(_produce(wire, "readable").values()) == {ErrorCode.none}
    with _as(broker, "alice") as wire:
        answer = wire.request(
            ApiKey.FETCH, 12, cluster_id=None, replica_id=-1, max_wait=0, min_bytes=1,
            max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
            forgotten_topics_data=[], rack_id="",
            topics=[{"topic": name, "topic_id": ZERO_UUID, "partitions": [
                {"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
                 "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}
                for name in ("readable", "writable")],
        )  # fmt: skip
    got = {t.topic: t.partitions[0] for t in answer.responses}
    assert got["readable"].error_code == ErrorCode.none and got["readable"].records
    # WRITE implies DESCRIBE, not READ.
    assert got["writable"].error_code == ErrorCode.topic_authorization_failed
    assert not got["writable"].records


def test_idempotent_producer_id_needs_write_on_some_topic(broker: EmbeddedBroker) -> None:
    """Kafka 2.8+ (KIP-679): IDEMPOTENT_WRITE on the cluster, or WRITE on any topic."""
    for user, expected in (
        ("alice", ErrorCode.none),
        ("bob", ErrorCode.cluster_authorization_failed),
    ):
        with _as(broker, user) as wire:
            answer = wire.request(
                ApiKey.INIT_PRODUCER_ID, 4, transactional_id=None, transaction_timeout=60_000,
                producer_id=-1, producer_epoch=-1,
            )  # fmt: skip
        assert answer.error_code == expected, user


def _metadata(wire: Wire, *names: str, create: bool = False) -> dict[str, Any]:
    answer = wire.request(
        ApiKey.METADATA, 12, allow_auto_topic_creation=create,
        include_topic_authorized_operations=True,
        topics=None if not names else [{"name": n, "topic_id": ZERO_UUID} for n in names],
    )  # fmt: skip
    return {t.name: t for t in answer.topics}


def test_metadata_lists_describable_and_creates_only_with_create(broker: EmbeddedBroker) -> None:
    with _as(broker, "alice") as wire:
        listed = _metadata(wire)
        assert set(listed) == {"readable", "writable"} | {
            n for n in listed if n.startswith("auto-")
        }
        topic_bits = (1 << Operation.READ) | (1 << Operation.DESCRIBE)
        assert listed["readable"].topic_authorized_operations == topic_bits
        named = _metadata(wire, "auto-made", "not-mine", create=True)
        assert "auto-made" in _metadata(wire)
    assert named["auto-made"].error_code == ErrorCode.none
    assert named["not-mine"].error_code == ErrorCode.topic_authorization_failed
    assert named["not-mine"].topic_authorized_operations == INT32_MIN
    assert on_loop(broker, lambda: broker.broker.topic("not-mine")) is None


def test_offset_fetch_of_every_topic_leaves_out_the_undescribable(broker: EmbeddedBroker) -> None:
    """alice has READ on group alices (READ implies the DESCRIBE OffsetFetch asks) and on
    topic readable; the group also committed `secret`, which she may not describe."""
    with _as(broker, "alice") as wire:
        answer = wire.request(ApiKey.OFFSET_FETCH, 8, require_stable=False, groups=[
            {"group_id": "alices", "topics": None},
            {"group_id": "others", "topics": None},
            {"group_id": "alices", "topics": [
                {"name": "readable", "partition_indexes": [0]},
                {"name": "secret", "partition_indexes": [0]}]},
        ])  # fmt: skip
    every, others, named = answer.groups
    assert every.error_code == ErrorCode.none
    assert [t.name for t in every.topics] == ["readable"]
    assert others.error_code == ErrorCode.group_authorization_failed and not others.topics
    codes = {t.name: t.partitions[0].error_code for t in named.topics}
    assert codes == {"readable": ErrorCode.none, "secret": ErrorCode.topic_authorization_failed}
    assert named.topics[1].partitions[0].committed_offset == -1


def test_list_groups_shows_describable_groups_or_all_with_cluster_describe(
    broker: EmbeddedBroker,
) -> None:
    with _as(broker, "alice") as wire:
        mine = wire.request(ApiKey.LIST_GROUPS, 4, states_filter=[])
    assert [g.group_id for g in mine.groups] == ["alices"]
    with _as(broker, "admin") as wire:
        create_acl(wire, ResourceType.CLUSTER, "kafka-cluster", "User:bob", Operation.DESCRIBE)
    with _as(broker, "bob") as wire:
        every = wire.request(ApiKey.LIST_GROUPS, 4, states_filter=[])
    assert {g.group_id for g in every.groups} == {"alices", "others"}


# --- without an authorizer ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        with Wire(b.bootstrap) as wire:
            create_topics(wire, "t")
        yield b


def test_without_authorizer_every_operation_is_reported(open_broker: EmbeddedBroker) -> None:
    """Kafka's AuthHelper.authorizedOperations without an authorizer: every operation the
    resource type supports (not INT32_MIN, which means "not asked for")."""
    with Wire(open_broker.bootstrap) as wire:
        meta = wire.request(ApiKey.METADATA, 10, allow_auto_topic_creation=False,
                            include_cluster_authorized_operations=True,
                            include_topic_authorized_operations=True,
                            topics=[{"name": "t", "topic_id": ZERO_UUID}])  # fmt: skip
        partitions = wire.request(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, topics=[{"name": "t"}],
                                  response_partition_limit=10, cursor=None)  # fmt: skip
        cluster = wire.request(ApiKey.DESCRIBE_CLUSTER, 1, endpoint_type=1,
                               include_cluster_authorized_operations=True)  # fmt: skip
        groups = wire.request(ApiKey.DESCRIBE_GROUPS, 5, groups=["g"],
                              include_authorized_operations=True)  # fmt: skip
        unasked = wire.request(ApiKey.METADATA, 10, allow_auto_topic_creation=False,
                               include_cluster_authorized_operations=False,
                               include_topic_authorized_operations=False, topics=None)  # fmt: skip
    assert meta.topics[0].topic_authorized_operations == _bits(ResourceType.TOPIC)
    assert meta.cluster_authorized_operations == _bits(ResourceType.CLUSTER)
    assert partitions.topics[0].topic_authorized_operations == _bits(ResourceType.TOPIC)
    assert cluster.cluster_authorized_operations == _bits(ResourceType.CLUSTER)
    assert groups.groups[0].authorized_operations == _bits(ResourceType.GROUP)
    assert unasked.cluster_authorized_operations == INT32_MIN
    assert unasked.topics[0].topic_authorized_operations == INT32_MIN


def test_internal_topic_in_a_transaction_is_refused_without_authorizer(
    open_broker: EmbeddedBroker,
) -> None:
    """Kafka's AddPartitionsToTxn leaves internal topics out of those it authorizes, so they
    are TOPIC_AUTHORIZATION_FAILED even without an authorizer, and nothing is added."""
    with Wire(open_broker.bootstrap) as wire:
        init = wire.request(
            ApiKey.INIT_PRODUCER_ID, 4, transactional_id="tx-internal",
            transaction_timeout=60_000, producer_id=-1, producer_epoch=-1,
        )  # fmt: skip
        assert init.error_code == ErrorCode.none
        answer = wire.request(
            ApiKey.ADD_PARTITIONS_TO_TXN, 3, v3_and_below_transactional_id="tx-internal",
            v3_and_below_producer_id=init.producer_id,
            v3_and_below_producer_epoch=init.producer_epoch,
            v3_and_below_topics=[{"name": "t", "partitions": [0]},
                                 {"name": "__consumer_offsets", "partitions": [0]}],
        )  # fmt: skip
    codes = {
        t.name: p.partition_error_code
        for t in answer.results_by_topic_v3_and_below
        for p in t.results_by_partition
    }
    assert codes == {
        "t": ErrorCode.operation_not_attempted,
        "__consumer_offsets": ErrorCode.topic_authorization_failed,
    }


# --- the cost ------------------------------------------------------------------------------------


class _Counting:
    """An authorizer that allows everything and counts the questions."""

    enabled = True

    def __init__(self) -> None:
        self.asked: list[str] = []

    def authorize(
        self, session: Any, operation: Any, resource_type: Any, name: str, audit: Any = None
    ) -> bool:
        self.asked.append(name)
        return True

    def authorize_by_resource_type(self, session: Any, operation: Any, resource_type: Any) -> bool:
        return True


def test_one_question_per_topic_not_per_partition() -> None:
    authorizer = _Counting()
    header = SimpleNamespace(api_key=ApiKey.PRODUCE, api_version=9)
    ctx: Any = SimpleNamespace(
        broker=SimpleNamespace(authorizer=authorizer), session=None, header=header
    )
    names = ["a", "b"] * 500  # 1000 partitions of two topics
    assert checks.denied(ctx, Operation.WRITE, ResourceType.TOPIC, names) == frozenset()
    assert sorted(authorizer.asked) == ["a", "b"]
    off: Any = SimpleNamespace(broker=SimpleNamespace(authorizer=SimpleNamespace(enabled=False)))
    assert checks.denied(off, Operation.WRITE, ResourceType.TOPIC, iter(names)) == frozenset()
