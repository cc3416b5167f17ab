"""The transaction state machine, as data (Kafka's TransactionMetadata.scala / TransactionState).

    state              id  meaning                                              valid previous
    Empty               0  producer initialised, no transaction open            (none), Empty,
                                                                                CompleteCommit,
                                                                                CompleteAbort
    Ongoing             1  partitions or offsets added; data may be written    Ongoing, Empty,
                                                                                CompleteCommit,
                                                                                CompleteAbort
    PrepareCommit       2  EndTxn(commit) accepted: the outcome is decided      Ongoing
    PrepareAbort        3  EndTxn(abort), a timeout or a fence decided abort    Ongoing,
                                                                                PrepareEpochFence
    CompleteCommit      4  COMMIT markers written to every partition            PrepareCommit
    CompleteAbort       5  ABORT markers written to every partition             PrepareAbort
    Dead                6  transactional id expired (not reached yet: ids are   Empty,
                           kept)                                                CompleteCommit,
                                                                                CompleteAbort
    PrepareEpochFence   7  InitProducerId arrived while Ongoing: bump the      Ongoing
                           epoch, then abort

Each change is a new immutable `TxnMetadata` made by `transition()`, which checks the table
(invariant 1: no transition outside it). The metadata is also the record written to
`__transaction_state`: key = the transactional id, value = `encode_metadata()` (a versioned
JSON object), and replaying the records in order rebuilds the coordinator (last write wins).
The decoders raise `TxnRecordError` for anything they cannot read, and nothing else.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import Any

from klamm.broker.coordinator_runtime import UnreadableRecord


class TxnState(enum.IntEnum):
    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def kafka_name(self) -> str:
        """The name Kafka's DescribeTransactions / ListTransactions use."""
        return _KAFKA_NAMES[self]


_KAFKA_NAMES = {
    TxnState.EMPTY: "Empty",
    TxnState.ONGOING: "Ongoing",
    TxnState.PREPARE_COMMIT: "PrepareCommit",
    TxnState.PREPARE_ABORT: "PrepareAbort",
    TxnState.COMPLETE_COMMIT: "CompleteCommit",
    TxnState.COMPLETE_ABORT: "CompleteAbort",
    TxnState.DEAD: "Dead",
    TxnState.PREPARE_EPOCH_FENCE: "PrepareEpochFence",
}
STATE_BY_NAME = {name: state for state, name in _KAFKA_NAMES.items()}

S = TxnState
VALID_PREVIOUS: dict[TxnState, frozenset[TxnState | None]] = {
    S.EMPTY: frozenset({None, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.ONGOING: frozenset({S.ONGOING, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_COMMIT: frozenset({S.ONGOING}),
    S.PREPARE_ABORT: frozenset({S.ONGOING, S.PREPARE_EPOCH_FENCE}),
    S.COMPLETE_COMMIT: frozenset({S.PREPARE_COMMIT}),
    S.COMPLETE_ABORT: frozenset({S.PREPARE_ABORT}),
    S.DEAD: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_EPOCH_FENCE: frozenset({S.ONGOING}),
}
# States in which the transaction's outcome is decided but markers are not all written yet.
PREPARING = frozenset({S.PREPARE_COMMIT, S.PREPARE_ABORT})
COMPLETE = frozenset({S.COMPLETE_COMMIT, S.COMPLETE_ABORT})

# Kafka bumps to a fresh producer id when the epoch would pass Short.MaxValue - 1, keeping
# Short.MaxValue free for fencing bumps (TransactionMetadata.isProducerEpochExhausted).
MAX_EPOCH = 2**15 - 2
NO_PRODUCER_ID = -1
NO_EPOCH = -1
# The coordinator's log, and the epoch its markers carry: one coordinator in this process, whose
# epoch never changes (Kafka bumps it when another broker takes the log partition over).
TXN_TOPIC = "__transaction_state"
COORDINATOR_EPOCH = 0


class InvalidTransition(AssertionError):
    """A bug: a transition outside VALID_PREVIOUS."""


@dataclass(frozen=True, slots=True)
class TxnMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    # KIP-360: the id/epoch before the latest bump, so a producer retrying InitProducerId with
    # its previous epoch is recognised instead of fenced.
    last_producer_id: int = NO_PRODUCER_ID
    last_producer_epoch: int = NO_EPOCH
    partitions: frozenset[tuple[str, int]] = frozenset()
    groups: frozenset[str] = frozenset()
    txn_start_ms: int = -1
    last_update_ms: int = -1

    @property
    def epoch_exhausted(self) -> bool:
        return self.producer_epoch >= MAX_EPOCH


def transition(meta: TxnMetadata | None, state: TxnState, **changes: Any) -> TxnMetadata:
    """The metadata after moving to `state` (checks invariant 1)."""
    previous = None if meta is None else meta.state
    if previous not in VALID_PREVIOUS[state]:
        raise InvalidTransition(f"transaction state {previous} cannot become {state}")
    if meta is None:
        return TxnMetadata(state=state, **changes)
    return dataclasses.replace(meta, state=state, **changes)


# --- records ---------------------------------------------------------------------------------

_VERSION = 1


def encode_key(kind: str, name: str = "") -> bytes:
    return json.dumps({"v": _VERSION, "kind": kind, "id": name}, separators=(",", ":")).encode()


class TxnRecordError(UnreadableRecord):
    """A __transaction_state record this version cannot read (not ours, damaged, or newer)."""


def decode_key(data: bytes) -> tuple[str, str]:
    obj = _json_object(data)
    kind, name = obj.get("kind"), obj.get("id")
    if not isinstance(kind, str) or not isinstance(name, str):
        raise TxnRecordError(f"key without a string kind and id: {data[:80]!r}")
    return kind, name


def decode_pid_block(data: bytes | None) -> int:
    """The end of a reserved producer id block (value of a "pid_block" key)."""
    try:
        return int(data or b"0")
    except ValueError as exc:
        raise TxnRecordError(f"producer id block end is not a number: {data!r:.80}") from exc


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for non-UTF-8 bytes
        raise TxnRecordError(f"not JSON: {data[:80]!r}") from exc
    if not isinstance(obj, dict):
        raise TxnRecordError(f"not a JSON object: {data[:80]!r}")
    return obj


def encode_metadata(meta: TxnMetadata) -> bytes:
    obj = {
        "v": _VERSION,
        "pid": meta.producer_id,
        "epoch": meta.producer_epoch,
        "last_pid": meta.last_producer_id,
        "last_epoch": meta.last_producer_epoch,
        "timeout_ms": meta.timeout_ms,
        "state": int(meta.state),
        "partitions": sorted([t, p] for t, p in meta.partitions),
        "groups": sorted(meta.groups),
        "start_ms": meta.txn_start_ms,
        "update_ms": meta.last_update_ms,
    }
    return json.dumps(obj, separators=(",", ":")).encode()


def decode_metadata(transactional_id: str, data: bytes) -> TxnMetadata:
    obj = _json_object(data)
    if obj.get("v") != _VERSION:
        raise TxnRecordError(f"unknown transaction record version {obj.get('v')!r}")
    try:
        return TxnMetadata(
            transactional_id=transactional_id,
            producer_id=_int(obj, "pid"),
            producer_epoch=_int(obj, "epoch"),
            last_producer_id=_int(obj, "last_pid"),
            last_producer_epoch=_int(obj, "last_epoch"),
            timeout_ms=_int(obj, "timeout_ms"),
            state=TxnState(_int(obj, "state")),
            partitions=frozenset((_str(t), _int_value(p)) for t, p in obj["partitions"]),
            groups=frozenset(_str(g) for g in obj["groups"]),
            txn_start_ms=_int(obj, "start_ms"),
            last_update_ms=_int(obj, "update_ms"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TxnRecordError(f"malformed metadata of {transactional_id!r}: {exc!r}") from exc


# Field checks, so that a record of the wrong shape fails here and not later in arithmetic.
def _int(obj: dict[str, Any], key: str) -> int:
    return _int_value(obj[key])


def _int_value(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value
