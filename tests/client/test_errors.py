from __future__ import annotations

import confluent_kafka
import pytest

from klamm.client import errors
from klamm.client.errors import (
    ConfigError,
    FatalError,
    KafkaError,
    KafkaTimeoutError,
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
        (RD.UNKNOWN_TOPIC_OR_PART, TopicError, False),
        (RD.TOPIC_ALREADY_EXISTS, TopicError, False),
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
