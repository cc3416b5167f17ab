from __future__ import annotations

import confluent_kafka
import pytest

from klamm.client import errors
from klamm.client.errors import (
    ConfigError,
    FatalError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NonRetriableError,
    NumberOfRetriesExceeded,
    OffsetOutOfRange,
    ProducerFencedError,
    RequestError,
    RetriableError,
    StateError,
    TopicError,
    TransactionAbortableError,
    from_librdkafka,
)

RD = confluent_kafka.KafkaError


@pytest.mark.parametrize(
    ("code", "expected", "retriable"),
    [
        (RD._TIMED_OUT, KafkaTimeoutError, True),
        (RD._MSG_TIMED_OUT, KafkaTimeoutError, True),
        # An unknown topic is a TopicError that is retriable (Kafka and KafkaJS retry it: a new
        # topic's metadata may lag); one that exists, or a missing partition, is not.
        (RD.UNKNOWN_TOPIC_OR_PART, TopicError, True),
        (RD._UNKNOWN_TOPIC, TopicError, True),
        (RD._UNKNOWN_PARTITION, TopicError, False),
        (RD.TOPIC_ALREADY_EXISTS, TopicError, False),
        (RD._TRANSPORT, KafkaConnectionError, True),
        (RD._ALL_BROKERS_DOWN, KafkaConnectionError, True),
        (RD.OFFSET_OUT_OF_RANGE, OffsetOutOfRange, False),
        (RD.LEADER_NOT_AVAILABLE, RetriableError, True),
        # After a fatal error librdkafka refuses every call with _FATAL, flagged non-fatal.
        (RD._FATAL, FatalError, False),
        (RD._INVALID_ARG, ConfigError, False),
        (RD._STATE, StateError, False),
        (RD.PRODUCER_FENCED, ProducerFencedError, False),
        (RD.MSG_SIZE_TOO_LARGE, RequestError, False),
        (RD.TOPIC_AUTHORIZATION_FAILED, RequestError, False),
    ],
)
def test_codes_map_to_the_tree(code: int, expected: type[KafkaError], retriable: bool) -> None:
    mapped = from_librdkafka(RD(code))
    assert type(mapped) is expected
    assert mapped.code == code
    assert mapped.retriable is retriable
    assert mapped.name == RD(code).name()


def test_retriable_flag_from_librdkafka_is_honoured() -> None:
    mapped = from_librdkafka(RD(RD.NOT_LEADER_FOR_PARTITION, retriable=True))
    assert isinstance(mapped, RetriableError)
    assert mapped.retriable


def test_fatal_and_abortable_flags() -> None:
    assert isinstance(from_librdkafka(RD(RD.OUT_OF_ORDER_SEQUENCE_NUMBER, fatal=True)), FatalError)
    abortable = from_librdkafka(RD(RD.INVALID_TXN_STATE, txn_requires_abort=True))
    assert isinstance(abortable, TransactionAbortableError)


def test_exception_wrapper_is_unwrapped() -> None:
    exc = confluent_kafka.KafkaException(RD(RD._TIMED_OUT))
    assert isinstance(from_librdkafka(exc), KafkaTimeoutError)


def test_wrap_leaves_foreign_exceptions_alone() -> None:
    boom = ZeroDivisionError()
    assert errors.wrap(boom) is boom
    assert isinstance(errors.wrap(BufferError("full")), RetriableError)


def test_every_error_is_a_kafka_error_and_states_retriable_on_the_class() -> None:
    classes = [
        ConfigError,
        StateError,
        RetriableError,
        KafkaTimeoutError,
        RequestError,
        TopicError,
        TransactionAbortableError,
        FatalError,
        ProducerFencedError,
    ]
    for cls in classes:
        assert issubclass(cls, KafkaError)
    assert RetriableError.retriable and KafkaTimeoutError.retriable
    assert not FatalError.retriable and not ConfigError.retriable


# KafkaJS's `retriable: true` protocol codes (src/protocol/error.js), all of them: librdkafka
# reports these in delivery reports and consumer errors with its retriable flag unset.
KAFKAJS_RETRIABLE_CODES = {
    2: "CORRUPT_MESSAGE",
    3: "UNKNOWN_TOPIC_OR_PARTITION",
    5: "LEADER_NOT_AVAILABLE",
    6: "NOT_LEADER_FOR_PARTITION",
    7: "REQUEST_TIMED_OUT",
    9: "REPLICA_NOT_AVAILABLE",
    13: "NETWORK_EXCEPTION",
    14: "GROUP_LOAD_IN_PROGRESS",
    15: "GROUP_COORDINATOR_NOT_AVAILABLE",
    16: "NOT_COORDINATOR_FOR_GROUP",
    19: "NOT_ENOUGH_REPLICAS",
    20: "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    41: "NOT_CONTROLLER",
    51: "CONCURRENT_TRANSACTIONS",
    56: "KAFKA_STORAGE_ERROR",
    70: "FETCH_SESSION_ID_NOT_FOUND",
    71: "INVALID_FETCH_SESSION_EPOCH",
    72: "LISTENER_NOT_FOUND",
    74: "FENCED_LEADER_EPOCH",
    75: "UNKNOWN_LEADER_EPOCH",
    78: "OFFSET_NOT_AVAILABLE",
    80: "PREFERRED_LEADER_NOT_AVAILABLE",
    83: "ELIGIBLE_LEADERS_NOT_AVAILABLE",
    84: "ELECTION_NOT_NEEDED",
    88: "UNSTABLE_OFFSET_COMMIT",
}
# Later codes whose Java exception is a RetriableException (KafkaJS predates them).
JAVA_ONLY_RETRIABLE_CODES = [
    RD.THROTTLING_QUOTA_EXCEEDED,
    RD.UNKNOWN_TOPIC_ID,
    RD.INCONSISTENT_TOPIC_ID,
    RD.SHARE_SESSION_NOT_FOUND,
    RD.INVALID_SHARE_SESSION_EPOCH,
    RD.SHARE_SESSION_LIMIT_REACHED,
]


def test_retriable_protocol_codes_need_no_flag_from_librdkafka() -> None:
    """Kafka's and KafkaJS's retriable codes are retriable as delivery reports and consumer errors
    carry them: confluent-kafka leaves `retriable()` False there."""
    wrong = []
    for code in [*KAFKAJS_RETRIABLE_CODES, *JAVA_ONLY_RETRIABLE_CODES]:
        err = RD(code)
        assert not err.retriable()  # what confluent-kafka hands us
        mapped = from_librdkafka(err)
        if not (mapped.retriable and isinstance(mapped, RetriableError | TopicError)):
            wrong.append((code, err.name(), type(mapped).__name__))
    assert wrong == []


def test_librdkafkas_transient_local_codes_are_retriable() -> None:
    transient = [
        RD._TRANSPORT,
        RD._RESOLVE,
        RD._ALL_BROKERS_DOWN,
        RD._MSG_TIMED_OUT,
        RD._TIMED_OUT_QUEUE,
        RD._QUEUE_FULL,
        RD._ISR_INSUFF,
        RD._WAIT_COORD,
        RD._NODE_UPDATE,
    ]
    wrong = []
    for code in transient:
        mapped = from_librdkafka(RD(code))
        if not (mapped.retriable and isinstance(mapped, RetriableError)):
            wrong.append((RD(code).name(), type(mapped).__name__))
    assert wrong == []


def test_a_retriable_instance_leaves_its_class_alone() -> None:
    """`retriable` is refined on the instance (an unknown topic), never on the shared class."""
    unknown = from_librdkafka(RD(RD.UNKNOWN_TOPIC_OR_PART))
    exists = from_librdkafka(RD(RD.TOPIC_ALREADY_EXISTS))
    assert type(unknown) is type(exists) is TopicError
    assert unknown.retriable and not exists.retriable and not TopicError.retriable


def test_a_bare_fatal_code_is_a_fatal_error() -> None:
    """poll() reports the cause once (fatal flag set); later calls fail with a bare _FATAL."""
    cause = from_librdkafka(
        confluent_kafka.KafkaException(RD(RD._FENCED, "fenced by newer instance", fatal=True))
    )
    assert isinstance(cause, ProducerFencedError) and not cause.retriable
    bare = from_librdkafka(
        confluent_kafka.KafkaException(RD(RD._FATAL, "Unable to produce message"))
    )
    assert type(bare) is FatalError and not bare.retriable


def test_kafkajs_error_classes_have_counterparts() -> None:
    """KafkaJS's NumberOfRetriesExceeded wraps the last error, is not retriable, and carries
    the retry count and time; connection errors are retriable; OffsetOutOfRange names the
    partition."""
    cause = errors.TopicError("gone", code=RD.UNKNOWN_TOPIC_OR_PART, retriable=True)
    exceeded = NumberOfRetriesExceeded(cause, retry_count=5, retry_time_ms=4800)
    assert isinstance(exceeded, NonRetriableError)
    assert not exceeded.retriable
    assert exceeded.cause is cause and exceeded.__cause__ is cause
    assert exceeded.original_error is cause
    assert (exceeded.retry_count, exceeded.retry_time_ms, exceeded.code) == (5, 4800, cause.code)
    assert "TopicError: gone" in str(exceeded)
    connection = KafkaConnectionError("refused", broker="127.0.0.1:1")
    assert connection.retriable and isinstance(connection, RetriableError)
    assert connection.broker == "127.0.0.1:1"
    out_of_range = OffsetOutOfRange("too far", topic="t", partition=2)
    assert (out_of_range.topic, out_of_range.partition, out_of_range.retriable) == ("t", 2, False)
    groups = [{"group_id": "g", "error_code": 69, "error": None}]
    assert errors.DeleteGroupsError("x", groups=groups).groups == groups
