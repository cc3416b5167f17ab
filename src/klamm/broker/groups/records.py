"""Records of the `__consumer_offsets` log: Kafka's own key and value layouts.

The log is compacted by key, so the latest record per key is the state, and a record with a null
value (a tombstone) deletes it. Encodings are Kafka's non-flexible schemas (big-endian; STRING is
an i16 length then UTF-8, a null string has length -1; BYTES is an i32 length; ARRAY an i32 count),
so Kafka's tools could read our log and we could read theirs:

    key, version 1: offset commit         (OffsetCommitKey.json)
        i16 version=1, STRING group, STRING topic, i32 partition
    value, version 3: offset commit       (OffsetCommitValue.json)
        i16 version=3, i64 offset, i32 leader_epoch, STRING metadata, i64 commit_timestamp
    key, version 2: group metadata        (GroupMetadataKey.json)
        i16 version=2, STRING group
    value, version 3: group metadata      (GroupMetadataValue.json)
        i16 version=3, STRING protocol_type, i32 generation, NULLABLE_STRING protocol,
        NULLABLE_STRING leader, i64 current_state_timestamp,
        ARRAY of member: STRING member_id, NULLABLE_STRING group_instance_id, STRING client_id,
            STRING client_host, i32 rebalance_timeout, i32 session_timeout,
            BYTES subscription, BYTES assignment

Transactional offset commits (TxnOffsetCommit) are the same offset records in a batch carrying the
producer id/epoch and the transactional flag; the COMMIT or ABORT control batch that follows
decides whether they become visible (see coordinator replay).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from klamm.broker.coordinator_runtime import UnreadableRecord

OFFSET_KEY_VERSION = 1
OFFSET_VALUE_VERSION = 3
GROUP_KEY_VERSION = 2
GROUP_VALUE_VERSION = 3

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class RecordFormatError(UnreadableRecord):
    """A key or value in __consumer_offsets that this broker cannot read."""


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class OffsetValue:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group: str


@dataclass(frozen=True, slots=True)
class MemberValue:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout: int
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    state_timestamp: int
    members: tuple[MemberValue, ...]


Key = OffsetKey | GroupKey
Value = OffsetValue | GroupValue


# --- writing ------------------------------------------------------------------------------------


def _str(out: bytearray, value: str | None) -> None:
    if value is None:
        out += _I16.pack(-1)
        return
    data = value.encode()
    out += _I16.pack(len(data))
    out += data


def _bytes(out: bytearray, value: bytes) -> None:
    out += _I32.pack(len(value))
    out += value


def encode_key(key: Key) -> bytes:
    out = bytearray()
    if isinstance(key, OffsetKey):
        out += _I16.pack(OFFSET_KEY_VERSION)
        _str(out, key.group)
        _str(out, key.topic)
        out += _I32.pack(key.partition)
    else:
        out += _I16.pack(GROUP_KEY_VERSION)
        _str(out, key.group)
    return bytes(out)


def encode_value(value: Value | None) -> bytes | None:
    if value is None:
        return None
    out = bytearray()
    if isinstance(value, OffsetValue):
        out += _I16.pack(OFFSET_VALUE_VERSION)
        out += _I64.pack(value.offset)
        out += _I32.pack(value.leader_epoch)
        _str(out, value.metadata)
        out += _I64.pack(value.commit_timestamp)
        return bytes(out)
    out += _I16.pack(GROUP_VALUE_VERSION)
    _str(out, value.protocol_type)
    out += _I32.pack(value.generation)
    _str(out, value.protocol)
    _str(out, value.leader)
    out += _I64.pack(value.state_timestamp)
    out += _I32.pack(len(value.members))
    for m in value.members:
        _str(out, m.member_id)
        _str(out, m.group_instance_id)
        _str(out, m.client_id)
        _str(out, m.client_host)
        out += _I32.pack(m.rebalance_timeout)
        out += _I32.pack(m.session_timeout)
        _bytes(out, m.subscription)
        _bytes(out, m.assignment)
    return bytes(out)


# --- reading ------------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def _take(self, fmt: struct.Struct) -> int:
        if self.pos + fmt.size > len(self.buf):
            raise RecordFormatError("truncated record")
        (value,) = fmt.unpack_from(self.buf, self.pos)
        self.pos += fmt.size
        return int(value)

    def i16(self) -> int:
        return self._take(_I16)

    def i32(self) -> int:
        return self._take(_I32)

    def i64(self) -> int:
        return self._take(_I64)

    def nullable_str(self) -> str | None:
        length = self.i16()
        if length < 0:
            return None
        end = self.pos + length
        if end > len(self.buf):
            raise RecordFormatError("truncated string")
        try:
            text = self.buf[self.pos : end].decode()
        except UnicodeDecodeError as exc:
            raise RecordFormatError("string is not UTF-8") from exc
        self.pos = end
        return text

    def str(self) -> str:
        return self.nullable_str() or ""

    def bytes(self) -> bytes:
        length = self.i32()
        end = self.pos + max(length, 0)
        if end > len(self.buf):
            raise RecordFormatError("truncated bytes")
        data = self.buf[self.pos : end]
        self.pos = end
        return bytes(data)


def decode_key(data: bytes) -> Key:
    r = _Reader(data)
    version = r.i16()
    if version in (0, 1):
        return OffsetKey(r.str(), r.str(), r.i32())
    if version == 2:
        return GroupKey(r.str())
    raise RecordFormatError(f"unknown key version {version}")


def decode_value(key: Key, data: bytes | None) -> Value | None:
    if data is None:
        return None
    r = _Reader(data)
    version = r.i16()
    if isinstance(key, OffsetKey):
        if version != OFFSET_VALUE_VERSION:
            raise RecordFormatError(f"unsupported offset value version {version}")
        return OffsetValue(r.i64(), r.i32(), r.str(), r.i64())
    if version != GROUP_VALUE_VERSION:
        raise RecordFormatError(f"unsupported group value version {version}")
    protocol_type = r.str()
    generation = r.i32()
    protocol = r.nullable_str()
    leader = r.nullable_str()
    timestamp = r.i64()
    members = tuple(
        MemberValue(
            member_id=r.str(),
            group_instance_id=r.nullable_str(),
            client_id=r.str(),
            client_host=r.str(),
            rebalance_timeout=r.i32(),
            session_timeout=r.i32(),
            subscription=r.bytes(),
            assignment=r.bytes(),
        )
        for _ in range(r.i32())
    )
    return GroupValue(protocol_type, generation, protocol, leader, timestamp, members)


def subscribed_topics(subscription: bytes) -> frozenset[str] | None:
    """Topics of a "consumer" protocol subscription (ConsumerProtocolSubscription: i16 version,
    ARRAY of STRING topics, ...), or None if it cannot be parsed (OffsetDelete then assumes the
    group may use any topic)."""
    try:
        r = _Reader(subscription)
        r.i16()
        count = r.i32()
        return frozenset(r.str() for _ in range(max(count, 0)))
    except RecordFormatError:
        return None


# One record of the log as the coordinator handles it (a None value is a tombstone).
GroupRecord = tuple[Key, Value | None]


class GroupRecordSerde:
    """`RecordSerde` of the group coordinator's runtime: Kafka's layouts above."""

    def serialize(self, record: GroupRecord) -> tuple[bytes, bytes | None]:
        key, value = record
        return encode_key(key), encode_value(value)

    def deserialize(self, key: bytes, value: bytes | None) -> GroupRecord:
        try:
            decoded = decode_key(key)
            return decoded, decode_value(decoded, value)
        except RecordFormatError:
            raise
        except ValueError as exc:  # a malformed UTF-8 string, say: unreadable all the same
            raise RecordFormatError(str(exc)) from exc
