"""Message shapes: what users send (`Message` or a dict), what they get back (`RecordMetadata`),
and what handlers receive (`KafkaMessage`, a thin view over librdkafka's message).

Normalisation is pure so it can be tested without a broker. Keys, values and header values may be
given as `str` (encoded as UTF-8, like KafkaJS does with JS strings) or `bytes`.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, cast, overload

from klamm.client.errors import ConfigError

#: A header value as users may give it: one value, or several for a repeated header (KafkaJS allows
#: an array).
HeaderValue = bytes | str | None | Sequence[bytes | str | None]
HeadersInput = Mapping[str, HeaderValue] | Sequence[tuple[str, bytes | str | None]]
#: librdkafka's header form: ordered (name, value) pairs, repeats allowed.
HeaderList = list[tuple[str, bytes | None]]


class CompressionTypes(enum.Enum):
    """Codecs for `send(compression=...)`; all four are built into librdkafka."""

    NONE = "none"
    GZIP = "gzip"
    SNAPPY = "snappy"
    LZ4 = "lz4"
    ZSTD = "zstd"


class MessageFields(TypedDict, total=False):
    """A record to produce: `Message(key=b"c1", value=b"...", headers={...})`.

    `Message` is this TypedDict for type checkers and `dict` itself at run time (see below), so a
    message is exactly KafkaJS's plain message object: a dict literal works the same, and mypy
    checks both. Plain dicts are what librdkafka's batch produce takes, so a message with just a
    key and a value reaches librdkafka as it is: no per-message object to build, and none for
    the garbage collector to track (a dict of bytes is untracked)."""

    key: bytes | str | None
    value: bytes | str | None
    #: A dict (a list value repeats the header) or (name, value) pairs.
    headers: HeadersInput | None
    #: None lets the partitioner choose (murmur2 on the key, as Java and KafkaJS do).
    partition: int | None
    #: Milliseconds since the epoch; None means "now" (CreateTime set by the client).
    timestamp: int | str | None


if TYPE_CHECKING:
    Message = MessageFields
else:
    # Calling a TypedDict class builds the same plain dict, in 100 ns instead of `dict`'s 40:
    # at a million messages a second that difference is 6% of send() (bench/client_vs_raw.py).
    Message = dict


class RecordMetadata(NamedTuple):
    """Where one produced record landed. (A tuple: one is built per delivered message.)"""

    topic: str
    partition: int
    offset: int
    timestamp: int | None


class OutgoingRecord(NamedTuple):
    """A message normalised to exactly what `confluent_kafka.Producer.produce` takes (a tuple:
    built once per produced message, so it must be cheap)."""

    key: bytes | None
    value: bytes | None
    headers: HeaderList | None
    partition: int | None
    timestamp: int | None


def to_bytes(data: bytes | bytearray | memoryview | str | None, what: str) -> bytes | None:
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise ConfigError(f"{what} must be bytes, str or None, not {type(data).__name__}")


def normalise_headers(headers: HeadersInput | None) -> HeaderList | None:
    """Turn a dict (values may be lists, for repeated headers) or a pair list into pairs."""
    if not headers:
        return None
    pairs: HeaderList = []
    items: Iterable[Any]
    items = headers.items() if isinstance(headers, Mapping) else headers
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise ConfigError(f"headers must be a dict or a list of pairs, not {headers!r}")
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ConfigError(f"headers must be a dict or a list of (name, value), got {item!r}")
        name, value = item
        if not isinstance(name, str):
            raise ConfigError(f"header names must be str, not {type(name).__name__}")
        if isinstance(value, list | tuple):
            pairs.extend((name, to_bytes(v, f"header {name!r}")) for v in value)
        else:
            pairs.append((name, to_bytes(cast(bytes | str | None, value), f"header {name!r}")))
    return pairs


_MESSAGE_KEYS = frozenset(MessageFields.__annotations__)
# What a message may hold and still go to librdkafka as it is.
_PLAIN_KEYS = frozenset({"key", "value"})
_PLAIN_TYPES = frozenset({bytes, str, type(None)})
_has_only_plain_keys = _PLAIN_KEYS.issuperset


def plain_messages(messages: Sequence[Any]) -> list[dict[str, Any]] | None:
    """`messages` as the list librdkafka's produce_batch takes, when every one is a dict holding
    nothing but a key and a value (the common case); None when any needs `normalise_message`.

    This runs over every produced message, so each check is one pass in C (about 40 ns a message
    in all), not a Python loop. Key and value types are left to `plain_types_ok`, or to
    produce_batch itself, which refuses a wrong type (anything but bytes, str or None; str is
    sent as UTF-8, like KafkaJS) before it enqueues anything."""
    if set(map(type, messages)) != {dict} or not _has_only_plain_keys(set().union(*messages)):
        return None
    plain = messages if type(messages) is list else list(messages)
    if max(map(sys.getrefcount, plain)) > 2 and len(set(map(id, plain))) != len(plain):
        # The same dict more than once: librdkafka marks a message it refuses (queue full, too
        # large) by adding "_error" to its dict, so each occurrence needs a dict of its own.
        # (The reference count rules this out cheaply: a dict held only by this list counts 2,
        # one for the list and one for getrefcount's argument.)
        return [dict(m) for m in plain]
    return plain


def plain_types_ok(messages: list[dict[str, Any]]) -> bool:
    """Whether every key and value is bytes, str or None: what produce_batch accepts."""
    get = dict.get
    values = set(map(type, map(get, messages, repeat("value"))))
    return values <= _PLAIN_TYPES and set(map(type, map(get, messages, repeat("key")))) <= (
        _PLAIN_TYPES
    )


def prepare_message(message: Mapping[str, Any]) -> dict[str, Any] | OutgoingRecord:
    """One message of a send that is not all plain: a plain one still becomes the dict
    produce_batch takes; anything else is normalised to an OutgoingRecord."""
    if type(message) is dict and _has_only_plain_keys(message):
        key, value = message.get("key"), message.get("value")
        if type(key) in _PLAIN_TYPES and type(value) in _PLAIN_TYPES:
            return dict(message)  # its own dict: see plain_messages on "_error"
    return normalise_message(message)


def normalise_message(message: Mapping[str, Any]) -> OutgoingRecord:
    """Accept a message dict (a `Message` is one) and check it once, before librdkafka sees it."""
    if not isinstance(message, Mapping):
        raise ConfigError(f"a message must be a Message or a dict, not {type(message).__name__}")
    unknown = set(message) - _MESSAGE_KEYS
    if unknown:
        raise ConfigError(f"unknown message fields: {sorted(unknown)}")
    key, value = message.get("key"), message.get("value")
    headers, partition = message.get("headers"), message.get("partition")
    timestamp = message.get("timestamp")
    if partition is not None and (not isinstance(partition, int) or partition < 0):
        raise ConfigError(f"partition must be a non-negative int, not {partition!r}")
    if timestamp is not None:
        # KafkaJS takes the timestamp as a string of milliseconds; accept that too.
        try:
            timestamp = int(timestamp)
        except (TypeError, ValueError):
            raise ConfigError(f"timestamp must be milliseconds, not {timestamp!r}") from None
    return OutgoingRecord(
        key=to_bytes(key, "key"),
        value=to_bytes(value, "value"),
        headers=normalise_headers(headers),
        partition=partition,
        timestamp=timestamp,
    )


class KafkaMessage:
    """A consumed record. A view over librdkafka's message: fields other than the value are read
    on access, so a handler pays only for what it looks at.

    The value is read up front into a slot: nearly every handler reads it, and a slot is read in
    C where a property costs a Python call, about 20 ns a message more than the value itself."""

    __slots__ = ("_headers", "_raw", "value")

    value: bytes | None

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.value = raw.value()
        self._headers: dict[str, bytes | None] | None = None

    @property
    def key(self) -> bytes | None:
        key: bytes | None = self._raw.key()
        return key

    @property
    def offset(self) -> int:
        offset: int = self._raw.offset()
        return offset

    @property
    def timestamp(self) -> int:
        """Milliseconds since the epoch (CreateTime or LogAppendTime, as the topic says)."""
        ts: int = self._raw.timestamp()[1]
        return ts

    @property
    def header_list(self) -> HeaderList:
        """All headers in order, repeats kept: the exact wire content."""
        return list(self._raw.headers() or ())

    @property
    def headers(self) -> dict[str, bytes | None]:
        """Headers by name; for a repeated name the last value wins (see `header_list`)."""
        if self._headers is None:
            self._headers = dict(self._raw.headers() or ())
        return self._headers

    @property
    def size(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return (
            f"KafkaMessage(topic={self._raw.topic()!r}, partition={self._raw.partition()}, "
            f"offset={self.offset}, key={self.key!r})"
        )


class MessageList(Sequence[KafkaMessage]):
    """The messages of a batch: a read-only list whose KafkaMessage views are made as they are
    read. Wrapping a whole fetch up front kept thousands of small objects alive per cycle for the
    garbage collector to scan, about a third of each_batch's overhead over raw confluent-kafka."""

    __slots__ = ("_raws",)

    def __init__(self, raws: list[Any]) -> None:
        self._raws = raws

    def __len__(self) -> int:
        return len(self._raws)

    @overload
    def __getitem__(self, index: int) -> KafkaMessage: ...
    @overload
    def __getitem__(self, index: slice) -> MessageList: ...
    def __getitem__(self, index: int | slice) -> KafkaMessage | MessageList:
        if isinstance(index, slice):
            return MessageList(self._raws[index])
        return KafkaMessage(self._raws[index])

    def __iter__(self) -> Iterator[KafkaMessage]:
        return map(KafkaMessage, self._raws)

    def __repr__(self) -> str:
        return f"MessageList({list(self)!r})"
