"""One error tree for the client, split by whose fault it is.

    KafkaError                      everything klamm's client raises; `.code`, `.retriable`
    ├── ConfigError                 your configuration or arguments are wrong; retrying cannot help
    ├── StateError                  the client is used in the wrong state (e.g. send before connect)
    ├── RetriableError              transient (leader moved, coordinator loading, network): retry
    │   └── KafkaTimeoutError       an operation did not finish in time
    ├── RequestError                the cluster refused the request for good (authorization, size)
    │   ├── AuthenticationError     the cluster refused our credentials (SASL) or TLS handshake
    │   └── TopicError              the topic is missing, invalid or already exists
    ├── TransactionAbortableError   the current transaction must be aborted; the producer lives on
    └── FatalError                  this client instance is unusable (fenced producer, ...)
        └── ProducerFencedError     another producer with the same transactional id took over

`retriable` and the Kafka error code live on the class (instances may refine `code`). librdkafka
errors are mapped here, at the boundary, by `from_librdkafka`; no other module inspects
`confluent_kafka.KafkaError`.
"""

from __future__ import annotations

from typing import Any

import confluent_kafka

_RD = confluent_kafka.KafkaError


class KafkaError(Exception):
    """Base of every error the klamm client raises."""

    retriable: bool = False
    #: Kafka protocol error code (positive) or librdkafka's (negative); None when not from Kafka.
    code: int | None = None

    def __init__(self, message: str = "", *, code: int | None = None, name: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        #: The symbolic name, e.g. "UNKNOWN_TOPIC_OR_PART", when the error came from librdkafka.
        self.name = name


class ConfigError(KafkaError):
    """Invalid configuration or arguments."""

    code = _RD._INVALID_ARG


class StateError(KafkaError):
    """The client is used in a state that does not allow the call."""

    code = _RD._STATE


class RetriableError(KafkaError):
    """A transient failure: the same call may succeed later."""

    retriable = True


class KafkaTimeoutError(RetriableError):
    """An operation did not complete within its timeout."""

    code = _RD._TIMED_OUT


class RequestError(KafkaError):
    """The cluster refused the request and will refuse it again."""


class AuthenticationError(RequestError):
    """The cluster refused the client's credentials (wrong SASL user or password, TLS trust)."""


class TopicError(RequestError):
    """The topic is unknown, invalid, or (on create) already exists."""


class TransactionAbortableError(KafkaError):
    """The transaction failed; abort it and start a new one."""


class FatalError(KafkaError):
    """The client instance can no longer be used; create a new one."""


class ProducerFencedError(FatalError):
    """A newer producer with the same transactional id fenced this one."""

    code = _RD._FENCED


# Codes whose meaning is about a topic, so users can `except TopicError`.
_TOPIC_CODES = frozenset(
    {
        _RD.UNKNOWN_TOPIC_OR_PART,
        _RD._UNKNOWN_TOPIC,
        _RD._UNKNOWN_PARTITION,
        _RD.TOPIC_ALREADY_EXISTS,
        _RD.TOPIC_EXCEPTION,
        _RD.INVALID_PARTITIONS,
        _RD.INVALID_REPLICATION_FACTOR,
    }
)
_FENCED_CODES = frozenset({_RD._FENCED, _RD.PRODUCER_FENCED, _RD.INVALID_PRODUCER_EPOCH})
_TIMEOUT_CODES = frozenset({_RD._TIMED_OUT, _RD._MSG_TIMED_OUT, _RD.REQUEST_TIMED_OUT})
_CONFIG_CODES = frozenset({_RD._INVALID_ARG, _RD.INVALID_CONFIG, _RD._INVALID_TYPE})
_STATE_CODES = frozenset({_RD._STATE, _RD._NOT_IMPLEMENTED})
_AUTH_CODES = frozenset({_RD._AUTHENTICATION, _RD.SASL_AUTHENTICATION_FAILED, _RD._SSL})


def is_authentication_error(err: Any) -> bool:
    """A librdkafka error (from error_cb or an exception) that means "credentials refused"."""
    if isinstance(err, confluent_kafka.KafkaException) and err.args:
        err = err.args[0]
    return isinstance(err, _RD) and err.code() in _AUTH_CODES


def from_librdkafka(err: Any) -> KafkaError:
    """Map a `confluent_kafka.KafkaError` (or a `KafkaException` carrying one) to our tree."""
    if isinstance(err, confluent_kafka.KafkaException) and err.args:
        err = err.args[0]
    if not isinstance(err, _RD):
        return KafkaError(str(err))
    code, name, text = err.code(), err.name(), err.str()
    message = f"{name}: {text}" if text else name
    cls: type[KafkaError]
    if code in _FENCED_CODES:
        cls = ProducerFencedError
    elif code in _AUTH_CODES:
        cls = AuthenticationError
    elif err.fatal():
        cls = FatalError
    elif err.txn_requires_abort():
        cls = TransactionAbortableError
    elif code in _TIMEOUT_CODES:
        cls = KafkaTimeoutError
    elif code in _CONFIG_CODES:
        cls = ConfigError
    elif code in _STATE_CODES:
        cls = StateError
    elif err.retriable():
        cls = RetriableError
    elif code in _TOPIC_CODES:
        cls = TopicError
    else:
        cls = RequestError
    return cls(message, code=code, name=name)


def wrap(exc: BaseException) -> BaseException:
    """Map librdkafka's exceptions to ours; leave every other exception as it is."""
    if isinstance(exc, confluent_kafka.KafkaException):
        return from_librdkafka(exc)
    if isinstance(exc, BufferError):
        return RetriableError(f"local producer queue is full: {exc}", code=_RD._QUEUE_FULL)
    if isinstance(exc, ValueError | TypeError) and "conf" in str(exc).lower():
        return ConfigError(str(exc))
    return exc
