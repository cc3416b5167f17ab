"""No request reaches data without the ACLs Kafka's KafkaApis asks for (issue 13).

For every API the router serves, `mallory` (a SASL user with no ACLs, allow.everyone.if.no.acl.found
false) sends a valid request naming resources that exist, and gets Kafka's authorization error
or an empty, filtered answer, never data. The same request from `admin` (a super user) is
answered without any authorization error, which shows the request named real things. The table
is checked against the router's: an API added later without a case here fails
`test_every_routed_api_has_a_case`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from klamm.broker.authorizer.checks import SUPPORTED_OPERATIONS
from klamm.broker.authorizer.model import ResourceType
from klamm.broker.router import load_handlers
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.testing import EmbeddedBroker
from tests.broker.authz_helpers import AUTHORIZATION_ERRORS, authorizing_broker, error_codes, login
from tests.broker.broker_helpers import create_topics, on_loop, one_record_batch, produce
from tests.broker.txn_wire import add_partitions, init_pid
from tests.broker.wire import Wire

USERS = {"admin": "admin-pw", "mallory": "mallory-pw"}
# The APIs Kafka serves to anyone, authorization or not: the connection's own setup, and
# DescribeCluster (KafkaApis.handleDescribeCluster checks nothing; it reports the brokers and,
# when asked, cluster_authorized_operations, which is 0 for a principal without DESCRIBE).
# Metadata also answers everyone, but leaves out every topic the principal may not describe:
# it has cases below.
PUBLIC = frozenset({ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE,
                    ApiKey.DESCRIBE_CLUSTER})  # fmt: skip
NODE = 0
ZERO_UUID = uuid.UUID(int=0)
T, G, TXN = 2, 3, 5  # topic "t", group "g", transactional id "txn"


@dataclass
class Case:
    """One request: its version and fields, the errors `mallory` must get (every non-zero
    error code in the answer), and for filtering APIs the list that must be empty for her and
    non-empty for the super user."""

    key: int
    version: int
    fields: Callable[[dict[str, Any]], dict[str, Any]]
    denied: frozenset[ErrorCode] = frozenset()
    listed: Callable[[Any], Any] | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _partitions(**values: Any) -> list[dict[str, Any]]:
    return [dict(partition_index=0, **values)]


TOPIC_DENIED = frozenset({ErrorCode.topic_authorization_failed})
GROUP_DENIED = frozenset({ErrorCode.group_authorization_failed})
CLUSTER_DENIED = frozenset({ErrorCode.cluster_authorization_failed})
TXN_DENIED = frozenset({ErrorCode.transactional_id_authorization_failed})


def _fetch(_: dict[str, Any]) -> dict[str, Any]:
    return dict(
        cluster_id=None, replica_id=-1, max_wait=0, min_bytes=1, max_bytes=1 << 20,
        isolation_level=0, session_id=0, session_epoch=-1, forgotten_topics_data=[], rack_id="",
        topics=[{"topic": "t", "topic_id": ZERO_UUID, "partitions": [
            {"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
             "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
    )  # fmt: skip


def _produce(_: dict[str, Any]) -> dict[str, Any]:
    return dict(
        transactional_id=None, acks=-1, timeout=5000,
        topic_data=[{"name": "t", "partition_data": [{"index": 0, "records": one_record_batch()}]}],
    )  # fmt: skip


def _txn_produce(state: dict[str, Any]) -> dict[str, Any]:
    batch = build_batch(RecordBatch(
        records=[Record(0, 1_700_000_000_000, b"k", b"v")], transactional=True,
        producer_id=state["pid"], producer_epoch=state["epoch"], base_sequence=1,
    ))  # fmt: skip
    return dict(
        transactional_id="txn", acks=-1, timeout=5000,
        topic_data=[{"name": "t", "partition_data": [{"index": 0, "records": batch}]}],
    )  # fmt: skip


def _configs(resource_type: int, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda _: dict(
        include_synonyms=False, include_documentation=False,
        resources=[{"resource_type": resource_type, "resource_name": name,
                    "configuration_keys": None}],
    )  # fmt: skip


def _alter(
    resource_type: int, name: str, config: str
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda _: dict(validate_only=True, resources=[
        {"resource_type": resource_type, "resource_name": name,
         "configs": [{"name": config, "value": "1000"}]}])  # fmt: skip


def _incremental(resource_type: int, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda _: dict(validate_only=True, resources=[
        {"resource_type": resource_type, "resource_name": name,
         "configs": [{"name": "retention.ms", "config_operation": 0,
                      "value": "1000"}]}])  # fmt: skip


def _commit_topics() -> list[dict[str, Any]]:
    return [{"name": "t", "partitions": _partitions(
        committed_offset=0, committed_leader_epoch=-1, committed_metadata="")}]  # fmt: skip


CASES: list[Case] = [
    Case(ApiKey.PRODUCE, 9, _produce, TOPIC_DENIED, name="produce"),
    Case(ApiKey.PRODUCE, 9, _txn_produce, TXN_DENIED, name="produce-transactional"),
    Case(ApiKey.FETCH, 12, _fetch, TOPIC_DENIED),
    Case(
        ApiKey.LIST_OFFSETS,
        7,
        lambda _: dict(
            replica_id=-1,
            isolation_level=0,
            topics=[
                {"name": "t", "partitions": _partitions(current_leader_epoch=-1, timestamp=-1)}
            ],
        ),
        TOPIC_DENIED,
    ),
    Case(
        ApiKey.METADATA,
        12,
        lambda _: dict(
            topics=[{"name": "t", "topic_id": ZERO_UUID}],
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=True,
        ),
        TOPIC_DENIED,
        name="metadata-named",
    ),
    Case(
        ApiKey.METADATA,
        12,
        lambda _: dict(
            topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=True
        ),
        listed=lambda r: r.topics,
        name="metadata-all",
    ),
    Case(
        ApiKey.METADATA,
        12,
        lambda _: dict(
            topics=[{"name": "auto-t", "topic_id": ZERO_UUID}],
            allow_auto_topic_creation=True,
            include_topic_authorized_operations=False,
        ),
        TOPIC_DENIED,
        name="metadata-autocreate",
    ),
    Case(
        ApiKey.OFFSET_COMMIT,
        8,
        lambda _: dict(
            group_id="g",
            generation_id_or_member_epoch=-1,
            member_id="",
            group_instance_id=None,
            topics=_commit_topics(),
        ),
        GROUP_DENIED,
    ),
    Case(
        ApiKey.OFFSET_FETCH,
        8,
        lambda _: dict(
            require_stable=False,
            groups=[{"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]}],
        ),
        GROUP_DENIED,
    ),
    Case(
        ApiKey.OFFSET_FETCH,
        1,
        lambda _: dict(group_id="g", topics=[{"name": "t", "partition_indexes": [0]}]),
        GROUP_DENIED,
        name="offset-fetch-v1",
    ),
    Case(
        ApiKey.FIND_COORDINATOR,
        4,
        lambda _: dict(key_type=0, coordinator_keys=["g"]),
        GROUP_DENIED,
        name="find-coordinator-group",
    ),
    Case(
        ApiKey.FIND_COORDINATOR,
        4,
        lambda _: dict(key_type=1, coordinator_keys=["txn"]),
        TXN_DENIED,
        name="find-coordinator-txn",
    ),
    Case(
        ApiKey.JOIN_GROUP,
        7,
        lambda _: dict(
            group_id="g",
            session_timeout=10_000,
            rebalance_timeout=10_000,
            member_id="",
            group_instance_id=None,
            protocol_type="consumer",
            protocols=[{"name": "range", "metadata": b""}],
        ),
        GROUP_DENIED,
    ),
    Case(
        ApiKey.HEARTBEAT,
        4,
        lambda _: dict(group_id="g", generation_id=1, member_id="m", group_instance_id=None),
        GROUP_DENIED,
    ),
    Case(
        ApiKey.LEAVE_GROUP,
        4,
        lambda _: dict(
            group_id="g", members=[{"member_id": "m", "group_instance_id": None, "reason": None}]
        ),
        GROUP_DENIED,
    ),
    Case(
        ApiKey.SYNC_GROUP,
        5,
        lambda _: dict(
            group_id="g",
            generation_id=1,
            member_id="m",
            group_instance_id=None,
            protocol_type="consumer",
            protocol_name="range",
            assignments=[],
        ),
        GROUP_DENIED,
    ),
    Case(
        ApiKey.DESCRIBE_GROUPS,
        5,
        lambda _: dict(groups=["g"], include_authorized_operations=True),
        GROUP_DENIED,
    ),
    Case(ApiKey.LIST_GROUPS, 4, lambda _: dict(states_filter=[]), listed=lambda r: r.groups),
    Case(
        ApiKey.CREATE_TOPICS,
        7,
        lambda _: dict(
            timeout=5000,
            validate_only=False,
            topics=[
                {
                    "name": "new-t",
                    "num_partitions": 1,
                    "replication_factor": 1,
                    "assignments": [],
                    "configs": [],
                }
            ],
        ),
        TOPIC_DENIED,
    ),
    Case(
        ApiKey.DELETE_TOPICS,
        6,
        lambda _: dict(timeout=5000, topics=[{"name": "doomed", "topic_id": ZERO_UUID}]),
        TOPIC_DENIED,
    ),
    Case(
        ApiKey.DELETE_TOPICS,
        6,
        lambda s: dict(timeout=5000, topics=[{"name": None, "topic_id": s["doomed_id"]}]),
        TOPIC_DENIED,
        name="delete-topics-by-id",
    ),
    Case(
        ApiKey.DELETE_RECORDS,
        2,
        lambda _: dict(timeout=5000, topics=[{"name": "t", "partitions": _partitions(offset=0)}]),
        TOPIC_DENIED,
    ),
    Case(
        ApiKey.INIT_PRODUCER_ID,
        4,
        lambda _: dict(
            transactional_id="txn2", transaction_timeout=60_000, producer_id=-1, producer_epoch=-1
        ),
        TXN_DENIED,
        name="init-producer-id-txn",
    ),
    Case(
        ApiKey.INIT_PRODUCER_ID,
        4,
        lambda _: dict(
            transactional_id=None, transaction_timeout=60_000, producer_id=-1, producer_epoch=-1
        ),
        CLUSTER_DENIED,
        name="init-producer-id-idempotent",
    ),
    Case(
        ApiKey.OFFSET_FOR_LEADER_EPOCH,
        4,
        lambda _: dict(
            replica_id=-1,
            topics=[
                {
                    "topic": "t",
                    "partitions": [{"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}],
                }
            ],
        ),
        TOPIC_DENIED,
    ),
    Case(
        ApiKey.ADD_PARTITIONS_TO_TXN,
        3,
        lambda s: dict(
            v3_and_below_transactional_id="txn",
            v3_and_below_producer_id=s["pid"],
            v3_and_below_producer_epoch=s["epoch"],
            v3_and_below_topics=[{"name": "t", "partitions": [1]}],
        ),
        TXN_DENIED,
    ),
    Case(
        ApiKey.ADD_OFFSETS_TO_TXN,
        3,
        lambda s: dict(
            transactional_id="txn", producer_id=s["pid"], producer_epoch=s["epoch"], group_id="g"
        ),
        TXN_DENIED,
    ),
    Case(
        ApiKey.TXN_OFFSET_COMMIT,
        3,
        lambda s: dict(
            transactional_id="txn",
            group_id="g",
            producer_id=s["pid"],
            producer_epoch=s["epoch"],
            generation_id=-1,
            member_id="",
            group_instance_id=None,
            topics=[
                {
                    "name": "t",
                    "partitions": _partitions(
                        committed_offset=0, committed_leader_epoch=-1, committed_metadata=""
                    ),
                }
            ],
        ),
        TXN_DENIED,
    ),
    Case(
        ApiKey.END_TXN,
        3,
        lambda s: dict(
            transactional_id="txn", producer_id=s["pid"], producer_epoch=s["epoch"], committed=True
        ),
        TXN_DENIED,
    ),
    Case(
        ApiKey.WRITE_TXN_MARKERS,
        1,
        lambda s: dict(
            markers=[
                {
                    "producer_id": s["pid"],
                    "producer_epoch": s["epoch"],
                    "transaction_result": False,
                    "topics": [{"name": "t", "partition_indexes": [0]}],
                    "coordinator_epoch": 0,
                }
            ]
        ),
        CLUSTER_DENIED,
    ),
    Case(
        ApiKey.DESCRIBE_ACLS,
        3,
        lambda _: dict(
            resource_type_filter=1,
            resource_name_filter=None,
            pattern_type_filter=1,
            principal_filter=None,
            host_filter=None,
            operation=1,
            permission_type=1,
        ),
        CLUSTER_DENIED,
    ),
    Case(
        ApiKey.CREATE_ACLS,
        3,
        lambda _: dict(
            creations=[
                {
                    "resource_type": T,
                    "resource_name": "unrelated",
                    "resource_pattern_type": 3,
                    "principal": "User:nobody",
                    "host": "*",
                    "operation": 3,
                    "permission_type": 3,
                }
            ]
        ),
        CLUSTER_DENIED,
    ),
    Case(
        ApiKey.DELETE_ACLS,
        3,
        lambda _: dict(
            filters=[
                {
                    "resource_type_filter": T,
                    "resource_name_filter": "unrelated",
                    "pattern_type_filter": 3,
                    "principal_filter": "User:nobody",
                    "host_filter": "*",
                    "operation": 3,
                    "permission_type": 3,
                }
            ]
        ),
        CLUSTER_DENIED,
    ),
    Case(ApiKey.DESCRIBE_CONFIGS, 4, _configs(2, "t"), TOPIC_DENIED, name="describe-configs-topic"),
    Case(
        ApiKey.DESCRIBE_CONFIGS,
        4,
        _configs(4, str(NODE)),
        CLUSTER_DENIED,
        name="describe-configs-broker",
    ),
    Case(ApiKey.ALTER_CONFIGS, 2, _alter(2, "t", "retention.ms"), TOPIC_DENIED),
    Case(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, _incremental(2, "t"), TOPIC_DENIED),
    Case(ApiKey.DESCRIBE_LOG_DIRS, 4, lambda _: dict(topics=None), CLUSTER_DENIED),
    Case(
        ApiKey.CREATE_PARTITIONS,
        3,
        lambda _: dict(
            timeout=5000,
            validate_only=True,
            topics=[{"name": "t", "count": 3, "assignments": None}],
        ),
        TOPIC_DENIED,
    ),
    Case(ApiKey.DELETE_GROUPS, 2, lambda _: dict(groups_names=["g-doomed"]), GROUP_DENIED),
    Case(
        ApiKey.ELECT_LEADERS,
        2,
        lambda _: dict(
            election_type=0, timeout=5000, topic_partitions=[{"topic": "t", "partitions": [0]}]
        ),
        CLUSTER_DENIED,
    ),
    Case(
        ApiKey.ALTER_PARTITION_REASSIGNMENTS,
        1,
        lambda _: dict(
            timeout=5000,
            allow_replication_factor_change=True,
            topics=[{"name": "t", "partitions": [{"partition_index": 0, "replicas": [NODE]}]}],
        ),
        CLUSTER_DENIED,
    ),
    Case(
        ApiKey.LIST_PARTITION_REASSIGNMENTS,
        0,
        lambda _: dict(timeout=5000, topics=None),
        CLUSTER_DENIED,
    ),
    Case(
        ApiKey.OFFSET_DELETE,
        0,
        lambda _: dict(
            group_id="g-doomed", topics=[{"name": "t", "partitions": [{"partition_index": 0}]}]
        ),
        GROUP_DENIED,
    ),
    Case(
        ApiKey.DESCRIBE_PRODUCERS,
        0,
        lambda _: dict(topics=[{"name": "t", "partition_indexes": [0]}]),
        TOPIC_DENIED,
    ),
    Case(ApiKey.DESCRIBE_TRANSACTIONS, 0, lambda _: dict(transactional_ids=["txn"]), TXN_DENIED),
    Case(
        ApiKey.LIST_TRANSACTIONS,
        1,
        lambda _: dict(state_filters=[], producer_id_filters=[], duration_filter=-1),
        listed=lambda r: r.transaction_states,
    ),
    Case(
        ApiKey.DESCRIBE_TOPIC_PARTITIONS,
        0,
        lambda _: dict(topics=[{"name": "t"}], response_partition_limit=100, cursor=None),
        TOPIC_DENIED,
        name="describe-topic-partitions-named",
    ),
    Case(
        ApiKey.DESCRIBE_TOPIC_PARTITIONS,
        0,
        lambda _: dict(topics=[], response_partition_limit=100, cursor=None),
        listed=lambda r: r.topics,
        name="describe-topic-partitions-all",
    ),
]


_API_NAMES = {value: name for name, value in vars(ApiKey).items() if name.isupper()}


def _case_id(case: Case) -> str:
    return case.name or _API_NAMES[case.key].lower().replace("_", "-")


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with authorizing_broker(USERS) as b:
        yield b


@pytest.fixture(scope="module")
def state(broker: EmbeddedBroker) -> dict[str, Any]:
    """What exists before the cases run, made by the super user: topics t, doomed and
    doomed-by-id (2 partitions each), a record in t-0, committed offsets of groups g and
    g-doomed, and an open transaction `txn` holding t-0."""
    with Wire(broker.bootstrap) as wire:
        login(wire, "admin", USERS["admin"])
        created = create_topics(wire, "t", "doomed", "doomed-by-id", partitions=2)
        assert {t.error_code for t in created.topics} == {ErrorCode.none}
        assert produce(wire, "t", one_record_batch())[0] == ErrorCode.none
        for group in ("g", "g-doomed"):
            committed = wire.request(
                ApiKey.OFFSET_COMMIT, 8, group_id=group, generation_id_or_member_epoch=-1,
                member_id="", group_instance_id=None, topics=_commit_topics(),
            )  # fmt: skip
            assert error_codes(committed) == {ErrorCode.none}
        init = init_pid(wire, "txn")
        assert init.error_code == ErrorCode.none
        pid, epoch = init.producer_id, init.producer_epoch
        assert add_partitions(wire, "txn", pid, epoch) == ErrorCode.none
        batch = build_batch(RecordBatch(
            records=[Record(0, 1_700_000_000_000, b"k", b"v")], transactional=True,
            producer_id=pid, producer_epoch=epoch, base_sequence=0,
        ))  # fmt: skip
        answer = wire.request(ApiKey.PRODUCE, 9, transactional_id="txn", acks=-1, timeout=5000,
                              topic_data=[{"name": "t", "partition_data": [
                                  {"index": 0, "records": batch}]}])  # fmt: skip
        assert error_codes(answer) == {ErrorCode.none}
    doomed_id = on_loop(broker, lambda: broker.broker.topic("doomed-by-id").topic_id)
    return {"pid": pid, "epoch": epoch, "doomed_id": doomed_id}


def test_every_routed_api_has_a_case() -> None:
    routed = set(load_handlers())
    covered = {case.key for case in CASES}
    assert routed - PUBLIC - covered == set(), "an API without an authorization case"
    assert covered | PUBLIC >= routed
    # The reviewed list of what Kafka serves without ACLs: nothing but the connection's setup
    # and the broker list.
    assert {_API_NAMES[k] for k in PUBLIC} == {
        "API_VERSIONS", "SASL_HANDSHAKE", "SASL_AUTHENTICATE", "DESCRIBE_CLUSTER",
    }  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_no_acl_no_data(broker: EmbeddedBroker, state: dict[str, Any], case: Case) -> None:
    fields = case.fields(state)
    with Wire(broker.bootstrap) as wire:
        login(wire, "mallory", USERS["mallory"])
        refused = wire.request(case.key, case.version, **fields)
    with Wire(broker.bootstrap) as wire:
        login(wire, "admin", USERS["admin"])
        served = wire.request(case.key, case.version, **fields)
    assert error_codes(refused) - {ErrorCode.none} == set(case.denied), refused
    if case.listed is not None:
        assert list(case.listed(refused)) == [], refused
        assert list(case.listed(served)) != [], served
    assert error_codes(served) & AUTHORIZATION_ERRORS == set(), served


def test_describe_cluster_serves_brokers_and_no_operations(broker: EmbeddedBroker) -> None:
    """The one data API Kafka serves to anyone: the broker list, with
    cluster_authorized_operations 0 for a principal without DESCRIBE on the cluster and every
    cluster operation for a super user."""
    every = sum(1 << op for op in SUPPORTED_OPERATIONS[ResourceType.CLUSTER])
    for user, expected in (("mallory", 0), ("admin", every)):
        with Wire(broker.bootstrap) as wire:
            login(wire, user, USERS[user])
            answer = wire.request(
                ApiKey.DESCRIBE_CLUSTER, 1, include_cluster_authorized_operations=True,
                endpoint_type=1,
            )  # fmt: skip
        assert answer.error_code == ErrorCode.none
        assert [b.broker_id for b in answer.brokers] == [NODE]
        assert answer.cluster_authorized_operations == expected
