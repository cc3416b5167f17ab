"""Where the ACLs live: the `__klamm_acls` internal log, replayed into the authorizer at start.

Kafka keeps ACLs in its metadata log (AccessControlEntryRecord, RemoveAccessControlEntryRecord)
and its AclControlManager writes them; this store is that manager for one node, a shard of the
coordinator runtime (coordinator_runtime.py): CreateAcls and DeleteAcls decide purely from the
authorizer's ACLs which records express the change, the runtime makes them durable, and only
then are they applied, so an answer never promises an ACL the disk does not hold, and start-up
replays the same records through the same `replay`.

The bytes. One record per ACL change, in a compacted topic (one partition):
  key   = UTF-8 JSON `{"v": 0, "resource_type": 2, "name": "t", "pattern_type": 3,
          "principal": "User:alice", "host": "*", "operation": 3, "permission": 3}`
          (the codes are Kafka's wire codes, model.py); the ACL is its own identity, as in
          Kafka's set of existing ACLs, so compaction keeps each ACL's last state;
  value = `{}` when the ACL exists, null (a tombstone) once deleted.
A key that does not read as such an ACL, or a newer `v`, is skipped with an error at start (the
runtime's policy): the broker always starts, with every ACL it can read.

Crash behaviour: a change is acknowledged after the group commit made it durable
(`klamm.flush.policy`); one interrupted before that may or may not be there after a restart,
and was not acknowledged. Each request's records go in one batch: all or none of them survive.

Concurrency: all on the event loop. Changes are serialised (one write at a time, as Kafka's
controller applies one request after the other), so the order records reach the log is the
order they are applied to memory, and a deletion decided while a creation is being written
sees its result.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from klamm.broker.authorizer.acls import AclBinding, AclFilter, creation_error, filter_error
from klamm.broker.authorizer.model import Operation, PatternType, Permission, ResourceType
from klamm.broker.coordinator_runtime import (
    CoordinatorRuntime,
    PartitionLogWriter,
    UnreadableRecord,
)

if TYPE_CHECKING:
    from klamm.broker.authorizer.standard import StandardAuthorizer
    from klamm.broker.interfaces import CoordinatorHost

__all__ = ["ACLS_TOPIC", "ACLS_TOPIC_CONFIG", "AclChange", "AclRecordSerde", "AclStore"]

log = logging.getLogger("klamm.broker.acls")

# The internal log of the ACLs (Kafka keeps them in __cluster_metadata, which klamm has not).
ACLS_TOPIC = "__klamm_acls"
# Compacted: each ACL's key keeps only its last record, so the log holds about as many records
# as there are ACLs, and a deleted one's tombstone goes after delete.retention.ms.
ACLS_TOPIC_CONFIG = {"cleanup.policy": "compact"}
# The record format version written; a reader skips a newer one.
RECORD_VERSION = 0

# (the ACL, whether it exists after this record)
AclChange = tuple[AclBinding, bool]


class AclRecordSerde:
    """The record format in the module docstring."""

    def serialize(self, record: AclChange) -> tuple[bytes, bytes | None]:
        acl, exists = record
        key = {
            "v": RECORD_VERSION, "resource_type": int(acl.resource_type), "name": acl.name,
            "pattern_type": int(acl.pattern_type), "principal": acl.principal,
            "host": acl.host, "operation": int(acl.operation), "permission": int(acl.permission),
        }  # fmt: skip
        return json.dumps(key, separators=(",", ":")).encode(), b"{}" if exists else None

    def deserialize(self, key: bytes, value: bytes | None) -> AclChange:
        try:
            raw = json.loads(key)
            if raw["v"] != RECORD_VERSION:
                raise UnreadableRecord(f"ACL record version {raw['v']} (this broker reads 0)")
            acl = AclBinding(
                ResourceType(raw["resource_type"]), str(raw["name"]),
                PatternType(raw["pattern_type"]), str(raw["principal"]), str(raw["host"]),
                Operation(raw["operation"]), Permission(raw["permission"]),
            )  # fmt: skip
        except UnreadableRecord:
            raise
        except (ValueError, KeyError, TypeError) as exc:  # JSON, codes, missing fields
            raise UnreadableRecord(f"not an ACL record: {exc!r}") from exc
        reason = creation_error(acl)
        if reason is not None:
            raise UnreadableRecord(f"not a valid ACL: {reason}")
        return acl, value is not None


class AclStore:
    """The ACLs' owner: creates and deletes them durably, and hands them to the authorizer."""

    name = "acls"

    def __init__(self, broker: CoordinatorHost, authorizer: StandardAuthorizer) -> None:
        self._broker = broker
        self.authorizer = authorizer
        self._runtime: CoordinatorRuntime[AclChange] | None = None
        self._writing = asyncio.Lock()

    async def start(self) -> None:
        if self._broker.topic(ACLS_TOPIC) is None:
            self._broker.create_topic(ACLS_TOPIC, 1, dict(ACLS_TOPIC_CONFIG), internal=True)
        partition = self._broker.partition(ACLS_TOPIC, 0)
        assert partition is not None, "just created, or the broker refused to start"
        self._runtime = CoordinatorRuntime(
            PartitionLogWriter(partition, self._broker.durability), AclRecordSerde(),
            self.replay, now_ms=self._broker.now_ms, logger=log,
        )  # fmt: skip
        await self._runtime.load()
        log.info("authorizer loaded %d ACLs from %s", len(self.authorizer), ACLS_TOPIC)
        authorizer = self.authorizer
        if not authorizer and not authorizer.super_users and not authorizer.allow_if_no_acl_found:
            log.warning("the authorizer is on with no ACLs and no super.users: every request "
                        "will be denied; name a super user (super.users, --super-users) to "
                        "create the first ACLs")  # fmt: skip

    async def stop(self) -> None:
        async with self._writing:  # a change being written finishes first
            pass

    def replay(self, record: AclChange, producer_id: int | None) -> None:
        acl, exists = record
        if exists:
            self.authorizer.add(acl)
        else:
            self.authorizer.remove(acl)

    # --- CreateAcls, DeleteAcls -----------------------------------------------------------------

    async def create(self, acls: Sequence[AclBinding]) -> list[str | None]:
        """Create each valid ACL (one already present is a success, written again nowhere);
        per ACL, None or why it was refused (INVALID_REQUEST). Raises CoordinatorUnavailable,
        having created none, if the log refuses the write."""
        errors = [creation_error(acl) for acl in acls]
        async with self._writing:
            new = {acl: None for acl, error in zip(acls, errors, strict=True) if error is None}
            records = [(acl, True) for acl in new if acl not in self.authorizer]
            if records:
                await self._write(records)
        for acl, error in zip(acls, errors, strict=True):
            if error is None:
                log.info("ACL created: %s", acl.describe())
        return errors

    async def delete(
        self, filters: Sequence[AclFilter]
    ) -> list[tuple[str | None, list[AclBinding]]]:
        """Delete every ACL each valid filter matches, in one write (all or none survive a
        crash); per filter, (None or why it was refused, the ACLs it deleted). An ACL two filters
        match is reported by both, as Kafka does."""
        results: list[tuple[str | None, list[AclBinding]]] = []
        async with self._writing:
            gone: dict[AclBinding, None] = {}
            for acl_filter in filters:
                error = filter_error(acl_filter)
                matched = [] if error is not None else self.authorizer.acls(acl_filter)
                gone.update(dict.fromkeys(matched))
                results.append((error, matched))
            if gone:
                await self._write([(acl, False) for acl in gone])
        for acl in gone:
            log.info("ACL deleted: %s", acl.describe())
        return results

    async def _write(self, records: list[AclChange]) -> None:
        assert self._runtime is not None, "the broker starts the store before serving"
        await self._runtime.write(records)
