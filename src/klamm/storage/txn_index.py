"""Aborted transactions of one partition: what read_committed Fetch reports as
`aborted_transactions`, so a consumer can drop the records of transactions that were aborted.

Each entry is Kafka's `AbortedTxn` (AbortedTxn.java), 34 bytes big-endian:

     0 version i16            0
     2 producer_id i64
    10 first_offset i64       offset of the transaction's first batch in this partition
    18 last_offset i64        offset of its ABORT marker
    26 last_stable_offset i64 the partition's LSO when the marker was written

Entries are kept in the order their markers were appended, so `last_offset` increases
strictly; lookups bisect on it.

Bytes and crash behaviour: the index has no file of its own. Its entries are written inside
the producer-state snapshot (`producer_state.py`, covered by that file's CRC) and every entry
after the snapshot is rebuilt by replaying the log tail, exactly as Kafka rebuilds `.txnindex`
during recovery. Concurrency: event-loop thread only (the broker), or a single loading thread
before the partition is served.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

__all__ = ["ENTRY", "AbortedTxn", "TxnIndex"]

ENTRY = struct.Struct(">hqqqq")  # 34 bytes, see the module docstring
_VERSION = 0


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TxnIndex:
    __slots__ = ("_entries", "_last_offsets")

    def __init__(self, entries: list[AbortedTxn] | None = None) -> None:
        self._entries: list[AbortedTxn] = []
        self._last_offsets: list[int] = []
        for entry in entries or ():
            self.append(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[AbortedTxn]:
        return list(self._entries)

    def append(self, entry: AbortedTxn) -> None:
        # Invariant 1: markers are appended in offset order, so last offsets strictly increase.
        if self._last_offsets and entry.last_offset <= self._last_offsets[-1]:
            raise ValueError(
                f"aborted txn ending at {entry.last_offset} is not after {self._last_offsets[-1]}"
            )
        self._entries.append(entry)
        self._last_offsets.append(entry.last_offset)

    def overlapping(self, start: int, end: int) -> list[AbortedTxn]:
        """Aborted transactions with records in [start, end): last_offset >= start and
        first_offset < end (Kafka's collectAbortedTxns)."""
        i = bisect.bisect_left(self._last_offsets, start)
        return [e for e in self._entries[i:] if e.first_offset < end]

    def truncate_before(self, offset: int) -> None:
        """Forget entries wholly below `offset` (retention moved the log start past them)."""
        i = bisect.bisect_left(self._last_offsets, offset)
        if i:
            del self._entries[:i]
            del self._last_offsets[:i]

    def truncate_from(self, offset: int) -> None:
        """Forget entries whose marker is at or after `offset` (the log was cut there)."""
        i = bisect.bisect_left(self._last_offsets, offset)
        del self._entries[i:]
        del self._last_offsets[i:]

    def encode(self) -> bytes:
        return b"".join(
            ENTRY.pack(_VERSION, e.producer_id, e.first_offset, e.last_offset, e.last_stable_offset)
            for e in self._entries
        )

    @classmethod
    def decode(cls, data: bytes | memoryview, count: int, pos: int = 0) -> tuple[TxnIndex, int]:
        """(index, position after it) from `count` entries at `pos`; raises ValueError on
        an unknown entry version or short data."""
        if len(data) - pos < count * ENTRY.size:
            raise ValueError("aborted transaction index is truncated")
        index = cls()
        for _ in range(count):
            version, pid, first, last, lso = ENTRY.unpack_from(data, pos)
            if version != _VERSION:
                raise ValueError(f"unknown aborted txn entry version {version}")
            index.append(AbortedTxn(pid, first, last, lso))
            pos += ENTRY.size
        return index, pos
