"""One error tree for the client, split by whose fault it is.

    KafkaError                      everything klamm's client raises; `.code`, `.retriable`
    ├── ConfigError                 your configuration or arguments are wrong; retrying cannot help
    ├── StateError                  the client is used in the wrong state (e.g. send before connect)
    ├── NonRetriableError           a failure no retry can help, wrapping its cause (`__cause__`)
    │   └── NumberOfRetriesExceeded the retries ran out (or the cause is a programming error)
    ├── RetriableError              transient (leader moved, coordinator loading, network): retry
    │   ├── KafkaTimeoutError       an operation did not finish in time
    │   └── KafkaConnectionError    no broker reachable, or the connection to one broke
    ├── RequestError                the cluster refused the request for good (authorization, size)
    │   ├── AuthenticationError     the cluster refused our credentials (SASL) or TLS handshake
    │   ├── TopicError              the topic is missing, invalid or already exists
    │   ├── OffsetOutOfRange        a fetch or seek offset outside the partition's log
    │   ├── DeleteGroupsError       admin.delete_groups failed for some groups (`.groups`)
    │   └── DeleteTopicRecordsError admin.delete_topic_records failed for some partitions
    ├── TransactionAbortableError   the current transaction must be aborted; the producer lives on
    └── FatalError                  this client instance is unusable (fenced producer, ...)
        └── ProducerFencedError     another producer with the same transactional id took over

`retriable` and the Kafka error code live on the class (instances may refine `code`). librdkafka
errors are mapped here, at the boundary, by `from_librdkafka`; no other module inspects
`confluent_kafka.KafkaError`.

Whether an error is retriable comes from its code, not from librdkafka's flag alone:
confluent-kafka sets `KafkaError.retriable()` only for the errors librdkafka returns with that
flag (the transactional calls), never for delivery reports, consumer errors or most exceptions.
The codes are `_RETRIABLE_CODES` below; librdkafka's flag is OR'ed in. One instance refines the
class's `retriable`: an unknown topic is a `TopicError` (so `except TopicError` catches it) that
is retriable, as in Kafka and KafkaJS, because a new topic's metadata may not have reached every
broker yet.

KafkaJS's classes and ours: KafkaJSError is KafkaError; KafkaJSNonRetriableError,
KafkaJSNumberOfRetriesExceeded (`retry_count`, `retry_time_ms`, `cause`, also
`original_error`) and
KafkaJSOffsetOutOfRange (`topic`, `partition`) keep their names without the prefix;
KafkaJSConnectionError (and its ConnectionClosed subclass) is KafkaConnectionError (`broker`),
named so it does not shadow Python's builtin ConnectionError; KafkaJSDeleteGroupsError and
KafkaJSDeleteTopicRecordsError keep their names and their `groups` / `partitions`. Whether to
retry is always `.retriable`: as in KafkaJS, NonRetriableError is a wrapper a retrier raises, not
the base of every non-retriable class.
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

    def __init__(
        self,
        message: str = "",
        *,
        code: int | None = None,
        name: str | None = None,
        retriable: bool | None = None,
    ):
        super().__init__(message)
        if code is not None:
            self.code = code
        if retriable is not None:
            self.retriable = retriable
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


class KafkaConnectionError(RetriableError):
    """No broker could be reached, or the connection to one broke (KafkaJSConnectionError)."""

    code = _RD._TRANSPORT

    def __init__(self, message: str = "", *, broker: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        #: "host:port" of the broker, when known.
        self.broker = broker


class NonRetriableError(KafkaError):
    """A failure no retry can help (KafkaJSNonRetriableError): raised `from` its cause."""

    retriable = False


class NumberOfRetriesExceeded(NonRetriableError):
    """The retrier gave up (KafkaJSNumberOfRetriesExceeded): the retries ran out, or the cause
    is a programming error (TypeError, NameError, ...) that no retry can fix.

    A consumer restarts after this error, as KafkaJS's does (see retry.py)."""

    def __init__(
        self,
        cause: BaseException,
        *,
        retry_count: int,
        retry_time_ms: int,
        message: str | None = None,
    ) -> None:
        code = cause.code if isinstance(cause, KafkaError) else None
        super().__init__(message or f"{type(cause).__name__}: {cause}", code=code)
        #: The last error the retried call raised (KafkaJS 2.2.4's `cause`).
        self.cause = cause
        self.__cause__ = cause
        #: How many retries were made after the first attempt.
        self.retry_count = retry_count
        #: The wait before the retry that was not made, in milliseconds (KafkaJS's retryTime).
        self.retry_time_ms = retry_time_ms

    @property
    def original_error(self) -> BaseException:
        """`cause` under KafkaJS 1.x's name (`originalError`)."""
        return self.cause


class RequestError(KafkaError):
    """The cluster refused the request and will refuse it again."""


class AuthenticationError(RequestError):
    """The cluster refused the client's credentials (wrong SASL user or password, TLS trust)."""


class TopicError(RequestError):
    """The topic is unknown, invalid, or (on create) already exists."""


class OffsetOutOfRange(RequestError):
    """The offset is outside the partition's log (KafkaJSOffsetOutOfRange)."""

    code = _RD.OFFSET_OUT_OF_RANGE

    def __init__(
        self,
        message: str = "",
        *,
        topic: str | None = None,
        partition: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.topic = topic
        self.partition = partition


class DeleteGroupsError(RequestError):
    """delete_groups failed for some groups (KafkaJSDeleteGroupsError).

    `groups` lists every group asked for: `{"group_id": ..., "error_code": 0 or Kafka's code,
    "error": None or the mapped KafkaError}`, so a caller sees which ones were deleted."""

    def __init__(self, message: str, *, groups: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.groups = groups


class DeleteTopicRecordsError(RequestError):
    """delete_topic_records failed for some partitions (KafkaJSDeleteTopicRecordsError).

    `partitions` lists the failed ones: `{"partition": ..., "offset": ..., "error": KafkaError}`."""

    def __init__(
        self, message: str, *, topic: str, partitions: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.topic = topic
        self.partitions = partitions


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
# After a fatal error librdkafka refuses every call with _FATAL ("Local: Fatal error", and
# `fatal()` False); the cause is reported once, by poll() (see producer.py).
_FATAL_CODES = frozenset({_RD._FATAL})
_TIMEOUT_CODES = frozenset({_RD._TIMED_OUT, _RD._MSG_TIMED_OUT, _RD.REQUEST_TIMED_OUT})
_CONFIG_CODES = frozenset({_RD._INVALID_ARG, _RD.INVALID_CONFIG, _RD._INVALID_TYPE})
_STATE_CODES = frozenset({_RD._STATE, _RD._NOT_IMPLEMENTED})
_AUTH_CODES = frozenset({_RD._AUTHENTICATION, _RD.SASL_AUTHENTICATION_FAILED, _RD._SSL})
# No broker reachable, or the connection broke: KafkaJSConnectionError's cases.
_CONNECTION_CODES = frozenset({_RD._TRANSPORT, _RD._ALL_BROKERS_DOWN, _RD._RESOLVE})

# Protocol codes a client may retry: KafkaJS's `retriable: true` list (protocol/error.js, codes up
# to 88), plus later codes whose Java exception is a `RetriableException`, directly or through
# `InvalidMetadataException` (KafkaJS predates them: marked "Java").
_RETRIABLE_PROTOCOL_CODES = frozenset(
    {
        _RD.INVALID_MSG,  # 2 CORRUPT_MESSAGE: corrupted in transit, resend
        _RD.UNKNOWN_TOPIC_OR_PART,  # 3: metadata may lag behind a topic's creation
        _RD.LEADER_NOT_AVAILABLE,  # 5: an election is in progress
        _RD.NOT_LEADER_FOR_PARTITION,  # 6 NOT_LEADER_OR_FOLLOWER: the leader moved
        _RD.REQUEST_TIMED_OUT,  # 7
        _RD.REPLICA_NOT_AVAILABLE,  # 9
        _RD.NETWORK_EXCEPTION,  # 13
        _RD.COORDINATOR_LOAD_IN_PROGRESS,  # 14
        _RD.COORDINATOR_NOT_AVAILABLE,  # 15
        _RD.NOT_COORDINATOR,  # 16
        _RD.NOT_ENOUGH_REPLICAS,  # 19
        _RD.NOT_ENOUGH_REPLICAS_AFTER_APPEND,  # 20
        _RD.NOT_CONTROLLER,  # 41
        _RD.CONCURRENT_TRANSACTIONS,  # 51: the previous transaction is still completing
        _RD.KAFKA_STORAGE_ERROR,  # 56
        _RD.FETCH_SESSION_ID_NOT_FOUND,  # 70
        _RD.INVALID_FETCH_SESSION_EPOCH,  # 71
        _RD.LISTENER_NOT_FOUND,  # 72
        _RD.FENCED_LEADER_EPOCH,  # 74
        _RD.UNKNOWN_LEADER_EPOCH,  # 75
        _RD.OFFSET_NOT_AVAILABLE,  # 78
        _RD.PREFERRED_LEADER_NOT_AVAILABLE,  # 80
        _RD.ELIGIBLE_LEADERS_NOT_AVAILABLE,  # 83
        _RD.ELECTION_NOT_NEEDED,  # 84
        _RD.UNSTABLE_OFFSET_COMMIT,  # 88
        _RD.THROTTLING_QUOTA_EXCEEDED,  # 89, Java
        _RD.UNKNOWN_TOPIC_ID,  # 100, Java
        _RD.INCONSISTENT_TOPIC_ID,  # 103, Java
        _RD.SHARE_SESSION_NOT_FOUND,  # 122, Java
        _RD.INVALID_SHARE_SESSION_EPOCH,  # 123, Java
        _RD.SHARE_SESSION_LIMIT_REACHED,  # 133, Java
    }
)
# librdkafka's own codes for conditions that pass: a broken or unresolvable connection, a full
# local queue, a coordinator or metadata being looked up, and timeouts.
_RETRIABLE_LOCAL_CODES = frozenset(
    {
        _RD._TRANSPORT,  # the connection broke; librdkafka reconnects
        _RD._RESOLVE,  # a broker's name did not resolve (DNS may recover)
        _RD._ALL_BROKERS_DOWN,  # no broker reachable right now
        _RD._MSG_TIMED_OUT,  # not delivered within message.timeout.ms
        _RD._TIMED_OUT,
        _RD._TIMED_OUT_QUEUE,
        _RD._QUEUE_FULL,  # the local queue drains as reports are served
        _RD._ISR_INSUFF,  # fewer in-sync replicas than acks needs, like NOT_ENOUGH_REPLICAS
        _RD._NODE_UPDATE,  # a broker's address changed
        _RD._WAIT_COORD,  # the coordinator is being looked up
        _RD._WAIT_CACHE,  # metadata is being refreshed
        _RD._PREV_IN_PROGRESS,  # an earlier call has not finished yet
        _RD._RETRY,  # librdkafka's own "retry the operation"
        _RD._UNKNOWN_TOPIC,  # librdkafka's UNKNOWN_TOPIC_OR_PART: metadata may lag
    }
)
_RETRIABLE_CODES = _RETRIABLE_PROTOCOL_CODES | _RETRIABLE_LOCAL_CODES


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
    retriable = code in _RETRIABLE_CODES or err.retriable()
    cls: type[KafkaError]
    if code in _FENCED_CODES:
        cls = ProducerFencedError
    elif code in _AUTH_CODES:
        cls = AuthenticationError
    elif err.fatal() or code in _FATAL_CODES:
        cls = FatalError
    elif err.txn_requires_abort():
        cls = TransactionAbortableError
    elif code in _TIMEOUT_CODES:
        cls = KafkaTimeoutError
    elif code in _CONFIG_CODES:
        cls = ConfigError
    elif code in _STATE_CODES:
        cls = StateError
    elif code in _CONNECTION_CODES:
        cls = KafkaConnectionError
    elif code == _RD.OFFSET_OUT_OF_RANGE:
        cls = OffsetOutOfRange
    elif code in _TOPIC_CODES:
        # The class says what went wrong; the instance says whether to retry (unknown topic).
        return TopicError(message, code=code, name=name, retriable=retriable)
    elif retriable:
        cls = RetriableError
    else:
        cls = RequestError
    return cls(message, code=code, name=name)


def unknown_topic(topic: str) -> TopicError:
    """The error for a topic the cluster does not have: a TopicError, retriable as librdkafka's
    own UNKNOWN_TOPIC_OR_PART is here and as KafkaJS's is (its metadata may lag a creation)."""
    return TopicError(
        f"unknown topic {topic!r}",
        code=_RD.UNKNOWN_TOPIC_OR_PART,
        name="UNKNOWN_TOPIC_OR_PART",
        retriable=True,
    )


def wrap(exc: BaseException) -> BaseException:
    """Map librdkafka's exceptions to ours; leave every other exception as it is."""
    if isinstance(exc, confluent_kafka.KafkaException):
        return from_librdkafka(exc)
    if isinstance(exc, BufferError):
        return RetriableError(f"local producer queue is full: {exc}", code=_RD._QUEUE_FULL)
    if isinstance(exc, ValueError | TypeError) and "conf" in str(exc).lower():
        return ConfigError(str(exc))
    return exc
