"""Broker-side schema validation: `confluent.value.schema.validation` / `...key...` topic configs.

With the config on, a produced record's value (or key) must carry Confluent's wire-format header
(magic byte 0, then a 4-byte schema id) naming a schema registered, and not deleted, under the
topic's subject in TopicNameStrategy (`<topic>-value`, `<topic>-key`), as Confluent Server
checks it. A batch with a record that does not is refused whole with INVALID_RECORD, the bad
records listed in record_errors. Null values (tombstones) and null keys pass: they carry no data
to describe.

Where the ids come from: the broker's own `_schemas` partition (the registry's log, in Confluent's
record format; klamm.schema writes it), read directly - the broker imports nothing of the registry
(DESIGN.md §2). `SchemaIdIndex` owns what it has read: it reads new batches only when it meets an
id it does not know, so a valid record costs one dict lookup and a newly registered schema is seen
on its first use. Control batches are skipped; records of an aborted registry transaction are
read as if committed (a registry aborts only when fenced, and then rewrites the same id).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

from klamm.broker.partition import Partition
from klamm.protocol.errors import InvalidRecordBatch
from klamm.protocol.record_batch import Record, decode_batch

log = logging.getLogger("klamm.broker")

SCHEMAS_TOPIC = "_schemas"  # Confluent's kafkastore.topic default, where klamm's registry writes
WIRE_HEADER = 5  # magic byte + 4-byte big-endian schema id


class SchemaIdIndex:
    def __init__(self, partition: Callable[[str, int], Partition | None]) -> None:
        self._partition = partition
        self._next_offset = 0
        # (subject, version) -> (schema id, deleted); a subject's live ids are derived from it.
        self._versions: dict[tuple[str, int], tuple[int, bool]] = {}
        self._live: dict[str, set[int]] = {}

    def problems(
        self, topic: str, records: Sequence[Record], *, key: bool, value: bool
    ) -> list[tuple[int, str]]:
        """(record index, why) for each record that breaks the topic's validation settings."""
        out: list[tuple[int, str]] = []
        for i, record in enumerate(records):
            for field, on, data in (("value", value, record.value), ("key", key, record.key)):
                if on and data is not None:
                    why = self._check(f"{topic}-{field}", field, data)
                    if why is not None:
                        out.append((i, why))
                        break
        return out

    def _check(self, subject: str, field: str, data: bytes) -> str | None:
        if len(data) < WIRE_HEADER or data[0] != 0:
            return (
                f"the record's {field} is not in Confluent's wire format (magic byte 0, schema id)"
            )
        schema_id = int.from_bytes(data[1:WIRE_HEADER], "big")
        if schema_id in self._live.get(subject, ()):
            return None
        self._refresh()
        if schema_id in self._live.get(subject, ()):
            return None
        return f"schema id {schema_id} of the record's {field} is not registered under {subject}"

    def _refresh(self) -> None:
        partition = self._partition(SCHEMAS_TOPIC, 0)
        if partition is None:
            return
        if partition.log.log_end_offset < self._next_offset:
            # The topic was deleted and created again: its offsets start over, so do we.
            self._next_offset = 0
            self._versions.clear()
            self._live = {}
        start = self._next_offset
        for header, data in partition.log.batches_from(self._next_offset):
            self._next_offset = header.next_offset
            if header.is_control:
                continue
            try:
                batch = decode_batch(data)
            except InvalidRecordBatch:
                continue
            for record in batch.records:
                self._apply(record.key, record.value)
        if self._next_offset == start and self._live:
            return  # nothing new: a stream of unknown ids costs no rebuild each
        self._live = {}
        for (subject, _), (schema_id, deleted) in self._versions.items():
            if not deleted:
                self._live.setdefault(subject, set()).add(schema_id)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            k = json.loads(key) if key else None
            v = json.loads(value) if value else None
            if not isinstance(k, dict):
                return
            keytype = k.get("keytype")
            if keytype == "SCHEMA":
                at = (str(k["subject"]), int(k["version"]))
                if v is None:
                    self._versions.pop(at, None)
                else:
                    self._versions[at] = (int(v["id"]), bool(v.get("deleted", False)))
            elif keytype == "DELETE_SUBJECT" and isinstance(v, dict):
                subject, upto = str(v["subject"]), int(v["version"])
                for (s, n), (schema_id, _) in list(self._versions.items()):
                    if s == subject and n <= upto:
                        self._versions[(s, n)] = (schema_id, True)
            elif keytype == "CLEAR_SUBJECT" and isinstance(v, dict):
                subject = str(v["subject"])
                for at, (_, deleted) in list(self._versions.items()):
                    if at[0] == subject and deleted:
                        del self._versions[at]
        except (ValueError, KeyError, TypeError):
            log.debug("_schemas: skipping a record the validator cannot read")
