"""The admin client: KafkaJS's admin methods in snake_case, same arguments, dict results.

confluent-kafka's AdminClient returns concurrent futures for most calls; we await them with
`asyncio.wrap_future` (no thread blocked on the loop). Metadata (`list_topics`) blocks, so it runs
in a thread.

Invariants, as in KafkaJS's admin:
1. Arguments are checked before any request; a wrong one raises ConfigError naming it. A bare
   str where a list is expected is refused: Python would iterate it character by character
   (`topics="orders"` would mean topics o, r, d, e, r, s).
2. Reads never create topics: `Kafka.admin()` sets `allow.auto.create.topics=false`
   (KafkaJS's allowAutoTopicCreation: false), so an unknown topic raises TopicError.
3. No per-partition error in a result is dropped: it raises, mapped by `from_librdkafka`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import confluent_kafka
from confluent_kafka import admin as _rd_admin

from klamm.client.acls import ACL_KEYS, as_dict, binding
from klamm.client.admin_args import (
    ResourceTypes,
    acl_resources,
    by_topic,
    check_config_entries,
    check_entries,
    check_flag,
    check_int,
    check_metadata,
    check_name,
    check_names,
    check_resource_type,
    check_unique,
    config_entry,
)
from klamm.client.config import timeout_ms as check_timeout
from klamm.client.connectivity import CONNECT_TIMEOUT_S, create_client, reach_cluster
from klamm.client.errors import (
    ConfigError,
    DeleteGroupsError,
    DeleteTopicRecordsError,
    KafkaError,
    StateError,
    from_librdkafka,
    unknown_topic,
)
from klamm.client.events import Connectable, EventEmitter, Events

T = TypeVar("T")
# confluent_kafka.admin re-exports its classes without `__all__`, which mypy --strict rejects.
rd_admin: Any = _rd_admin


_RD_RESOURCE = {
    ResourceTypes.TOPIC: rd_admin.ResourceType.TOPIC,
    ResourceTypes.BROKER: rd_admin.ResourceType.BROKER,
    ResourceTypes.GROUP: rd_admin.ResourceType.GROUP,
}


# Group-membership refusals of an offset commit: what the broker answers the admin's commit
# (no member id, generation -1) while the group has members.
_GROUP_NOT_EMPTY_CODES = frozenset(
    {
        confluent_kafka.KafkaError.ILLEGAL_GENERATION,
        confluent_kafka.KafkaError.UNKNOWN_MEMBER_ID,
        confluent_kafka.KafkaError.REBALANCE_IN_PROGRESS,
    }
)

# The keys each dict-shaped argument accepts (KafkaJS's, in snake_case), required ones first.
_TOPIC_KEYS = ("topic", "num_partitions", "replication_factor", "config_entries")
_PARTITIONS_KEYS = ("topic", "count")
_DESCRIBE_KEYS = ("type", "name", "config_names")
_ALTER_KEYS = ("type", "name", "config_entries")
_OFFSET_KEYS = ("partition", "offset", "metadata")
# KafkaJS's logical offsets, resolved by fetch_offsets(resolve_offsets=True).
_LATEST, _EARLIEST = -1, -2


# -- librdkafka boundary ----------------------------------------------------------------------


def _start(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Start a librdkafka admin request. librdkafka checks its arguments on the spot (ValueError,
    TypeError): whatever the checks above let through is still the caller's mistake."""
    try:
        return method(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    except confluent_kafka.KafkaException as exc:
        raise from_librdkafka(exc) from None


def _raise_partition_errors(action: str, group_id: str, partitions: Iterable[Any]) -> None:
    """Invariant 3: a result's per-partition errors raise, all partitions named."""
    failed = [tp for tp in partitions if tp.error is not None]
    if not failed:
        return
    err = from_librdkafka(failed[0].error)
    where = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in failed)
    hint = ""
    if err.code in _GROUP_NOT_EMPTY_CODES:
        hint = " (the consumer group must have no running members: stop its consumers first)"
    # Keep what the mapping decided (class, code, retriable); only say where it happened.
    err.args = (f"{action} of group {group_id!r} failed for {where}: {err}{hint}",)
    raise err


async def _await(future: concurrent.futures.Future[T]) -> T:
    try:
        return await asyncio.wrap_future(future)
    except confluent_kafka.KafkaException as exc:
        raise from_librdkafka(exc) from None


async def _await_all(futures: Mapping[Any, concurrent.futures.Future[Any]]) -> dict[Any, Any]:
    return {key: await _await(f) for key, f in futures.items()}


class Admin(Connectable):
    def __init__(
        self, conf: dict[str, Any], *, connect_timeout_s: float = CONNECT_TIMEOUT_S
    ) -> None:
        self._conf = conf
        self._connect_timeout_s = connect_timeout_s
        self._rd: Any = None
        self.events = EventEmitter("admin")

    async def connect(self) -> None:
        """Create the admin client and reach the cluster (AuthenticationError at once when the
        login is refused)."""
        if self._rd is None:
            rd, watch = create_client(rd_admin.AdminClient, self._conf)
            await asyncio.get_running_loop().run_in_executor(
                None, reach_cluster, rd, watch, self._connect_timeout_s
            )
            self._rd = rd
            self.events.emit(Events.CONNECT)

    async def disconnect(self) -> None:
        if self._rd is not None:
            self._rd = None  # librdkafka frees the handle when the object is collected
            self.events.emit(Events.DISCONNECT)

    @property
    def _client(self) -> Any:
        if self._rd is None:
            raise StateError("admin is not connected; call `await admin.connect()` first")
        return self._rd

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, fn, *args)
        except confluent_kafka.KafkaException as exc:
            raise from_librdkafka(exc) from None

    # -- topics -------------------------------------------------------------------------------

    async def create_topics(
        self,
        *,
        topics: Sequence[Mapping[str, Any]],
        validate_only: bool = False,
        timeout_ms: int = 5_000,
        wait_for_leaders: bool = True,
    ) -> bool:
        """`topics=[{"topic", "num_partitions", "replication_factor", "config_entries":
        [{"name", "value"}]}]`; any other key is a ConfigError. Returns False when every topic
        already existed (KafkaJS)."""
        new, names = [], []
        for i, t in enumerate(check_entries(topics, "topics", _TOPIC_KEYS, required=1)):
            where = f"topics[{i}]"
            names.append(check_name(t["topic"], f"{where}['topic']"))
            config_entries = t.get("config_entries")
            new.append(
                rd_admin.NewTopic(
                    names[-1],
                    # -1: the broker's default (num.partitions, default.replication.factor).
                    num_partitions=check_int(
                        t.get("num_partitions", -1), f"{where}['num_partitions']", minimum=-1
                    ),
                    replication_factor=check_int(
                        t.get("replication_factor", -1),
                        f"{where}['replication_factor']",
                        minimum=-1,
                    ),
                    config={}
                    if config_entries is None
                    else check_config_entries(config_entries, f"{where}['config_entries']"),
                )
            )
        check_unique(names, "topics")
        futures = _start(
            self._client.create_topics,
            new,
            operation_timeout=check_timeout(timeout_ms) / 1000,
            validate_only=validate_only,
        )
        created = False
        for f in futures.values():
            try:
                await _await(f)
                created = True
            except KafkaError as exc:
                if exc.code != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        if created and wait_for_leaders and not validate_only:
            await self._wait_for_topics(names, timeout_ms)
        return created

    async def _wait_for_topics(self, names: Sequence[str], timeout_ms: int) -> None:
        """Wait until metadata shows every partition of `names` with a leader."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while True:
            md = await self._in_thread(self._client.list_topics, None, timeout_ms / 1000)
            ready = all(
                n in md.topics
                and md.topics[n].error is None
                and md.topics[n].partitions
                and all(p.leader >= 0 for p in md.topics[n].partitions.values())
                for n in names
            )
            if ready or loop.time() > deadline:
                return
            await asyncio.sleep(0.05)

    async def delete_topics(self, *, topics: Sequence[str], timeout_ms: int = 5_000) -> None:
        names = check_names(topics, "topics", "topic names")
        timeout_s = check_timeout(timeout_ms) / 1000
        await _await_all(
            _start(
                self._client.delete_topics,
                names,
                operation_timeout=timeout_s,
            )
        )

    async def list_topics(self) -> list[str]:
        md = await self._in_thread(self._client.list_topics, None, 10)
        return sorted(name for name in md.topics if not name.startswith("__"))

    async def fetch_topic_metadata(self, *, topics: Sequence[str] | None = None) -> dict[str, Any]:
        """`{"topics": [{"name", "partitions": [{"partition_id", "leader", "replicas", "isr",
        "partition_error_code"}]}]}`; every topic but Kafka's internal ones when `topics` is
        None or empty."""
        wanted = (
            [] if topics is None else check_names(topics, "topics", "topic names", allow_empty=True)
        )
        md = await self._in_thread(self._client.list_topics, None, 10)
        names = wanted or sorted(n for n in md.topics if not n.startswith("__"))
        result = []
        for name in names:
            tmd = md.topics.get(name)
            if tmd is None or tmd.error is not None:
                raise unknown_topic(name)
            result.append(
                {
                    "name": name,
                    "partitions": [
                        {
                            "partition_id": p.id,
                            "leader": p.leader,
                            "replicas": list(p.replicas),
                            "isr": list(p.isrs),
                            "partition_error_code": p.error.code() if p.error else 0,
                        }
                        for p in sorted(tmd.partitions.values(), key=lambda p: p.id)
                    ],
                }
            )
        return {"topics": result}

    async def create_partitions(
        self,
        *,
        topic_partitions: Sequence[Mapping[str, Any]],
        validate_only: bool = False,
        timeout_ms: int = 5_000,
    ) -> None:
        """`topic_partitions=[{"topic", "count"}]`: `count` is the new total. With
        `validate_only=True` the broker checks the request and creates nothing."""
        check_flag(validate_only, "validate_only")
        entries = check_entries(topic_partitions, "topic_partitions", _PARTITIONS_KEYS, required=2)
        timeout_s = check_timeout(timeout_ms) / 1000
        new = [
            rd_admin.NewPartitions(
                check_name(tp["topic"], f"topic_partitions[{i}]['topic']"),
                check_int(tp["count"], f"topic_partitions[{i}]['count']", minimum=1),
            )
            for i, tp in enumerate(entries)
        ]
        await _await_all(
            _start(
                self._client.create_partitions,
                new,
                operation_timeout=timeout_s,
                validate_only=validate_only,
            )
        )

    # -- configs ------------------------------------------------------------------------------

    async def _check_broker_ids(self, names: Sequence[str]) -> None:
        """librdkafka sends a broker resource's request to that broker: for an id the cluster
        does not have, it waits out the request timeout (a minute). Refuse it at once."""
        if not names:
            return
        md = await self._in_thread(self._client.list_topics, None, 10)
        known = {str(broker_id) for broker_id in md.brokers}
        for name in names:
            if name not in known:
                raise ConfigError(
                    f"unknown broker id {name!r} (brokers: {', '.join(sorted(known))})"
                )

    async def describe_configs(
        self, *, resources: Sequence[Mapping[str, Any]], include_synonyms: bool = False
    ) -> dict[str, Any]:
        """`resources=[{"type": ResourceTypes.TOPIC, "name", "config_names": [...]}]`; `type` may
        also be the numeric code, as KafkaJS's ResourceTypes are. Each entry says where its value
        comes from (`config_source`, Kafka's code as in KafkaJS: 1 topic, 4 static broker, 5
        default...) and, with `include_synonyms=True`, every level that sets it
        (`config_synonyms`)."""
        check_flag(include_synonyms, "include_synonyms")
        checked = []
        for i, r in enumerate(check_entries(resources, "resources", _DESCRIBE_KEYS, required=2)):
            where = f"resources[{i}]"
            names = r.get("config_names")
            checked.append(
                (
                    check_resource_type(r["type"], f"{where}['type']"),
                    check_name(r["name"], f"{where}['name']"),
                    check_names(names, f"{where}['config_names']", "config names", allow_empty=True)
                    if names is not None
                    else [],
                )
            )
        await self._check_broker_ids([n for t, n, _ in checked if t == ResourceTypes.BROKER])
        rd_resources = [rd_admin.ConfigResource(_RD_RESOURCE[t], n) for t, n, _ in checked]
        results = await _await_all(_start(self._client.describe_configs, rd_resources))
        out = []
        for (rtype, rname, config_names), res in zip(checked, rd_resources, strict=True):
            entries = results[res]
            wanted = set(config_names or entries)
            out.append(
                {
                    "resource_type": rtype,
                    "resource_name": rname,
                    "config_entries": [
                        config_entry(e, include_synonyms)
                        for name, e in sorted(entries.items())
                        if name in wanted
                    ],
                }
            )
        return {"resources": out}

    async def alter_configs(
        self, *, resources: Sequence[Mapping[str, Any]], validate_only: bool = False
    ) -> None:
        """`resources=[{"type", "name", "config_entries": [{"name", "value"}]}]`. Sent as
        incremental SETs (IncrementalAlterConfigs): entries not named keep their values. With
        `validate_only=True` the broker checks the change and applies nothing."""
        check_flag(validate_only, "validate_only")
        rd_resources = []
        for i, r in enumerate(check_entries(resources, "resources", _ALTER_KEYS, required=3)):
            where = f"resources[{i}]"
            config = check_config_entries(r["config_entries"], f"{where}['config_entries']")
            entries = [
                rd_admin.ConfigEntry(
                    name, value, incremental_operation=rd_admin.AlterConfigOpType.SET
                )
                for name, value in config.items()
            ]
            rd_resources.append(
                rd_admin.ConfigResource(
                    _RD_RESOURCE[check_resource_type(r["type"], f"{where}['type']")],
                    check_name(r["name"], f"{where}['name']"),
                    incremental_configs=entries,
                )
            )
        await _await_all(
            _start(
                self._client.incremental_alter_configs, rd_resources, validate_only=validate_only
            )
        )

    # -- groups and offsets -------------------------------------------------------------------

    async def list_groups(self) -> dict[str, Any]:
        result = await _await(self._client.list_consumer_groups())
        return {
            "groups": [
                {"group_id": g.group_id, "protocol_type": "consumer", "state": str(g.state.name)}
                for g in result.valid
            ]
        }

    async def describe_groups(self, *, group_ids: Sequence[str]) -> dict[str, Any]:
        ids = check_names(group_ids, "group_ids", "group ids")
        results = await _await_all(_start(self._client.describe_consumer_groups, ids))
        groups = []
        for gid in ids:
            d = results[gid]
            groups.append(
                {
                    "group_id": d.group_id,
                    "state": d.state.name,
                    "protocol": d.partition_assignor,
                    # librdkafka describes consumer groups only; a "simple" one (offsets
                    # committed without a membership) has no protocol type, as in Kafka.
                    "protocol_type": "" if d.is_simple_consumer_group else "consumer",
                    "members": [
                        {
                            "member_id": m.member_id,
                            "client_id": m.client_id,
                            "client_host": m.host,
                            "group_instance_id": m.group_instance_id,
                            "assignment": [
                                (tp.topic, tp.partition) for tp in m.assignment.topic_partitions
                            ],
                            # KafkaJS's AssignerProtocol.MemberAssignment.decode(...).assignment
                            "member_assignment": by_topic(m.assignment.topic_partitions),
                        }
                        for m in d.members
                    ],
                }
            )
        return {"groups": groups}

    async def delete_groups(self, *, group_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Delete groups that have no members: `[{"group_id", "error_code": 0}]`. When any
        fails, DeleteGroupsError lists every group with its error (KafkaJS's `.groups`)."""
        ids = check_names(group_ids, "group_ids", "group ids")
        futures = _start(self._client.delete_consumer_groups, ids)
        results: list[dict[str, Any]] = []
        for gid in ids:
            try:
                await _await(futures[gid])
                results.append({"group_id": gid, "error_code": 0, "error": None})
            except KafkaError as exc:
                results.append({"group_id": gid, "error_code": exc.code, "error": exc})
        failed = [r for r in results if r["error"] is not None]
        if failed:
            where = ", ".join(f"{r['group_id']!r}: {r['error']}" for r in failed)
            raise DeleteGroupsError(f"delete_groups failed for {where}", groups=results)
        return [{"group_id": r["group_id"], "error_code": 0} for r in results]

    async def fetch_offsets(
        self,
        *,
        group_id: str,
        topics: Sequence[str] | None = None,
        resolve_offsets: bool = False,
    ) -> list[dict[str, Any]]:
        """Committed offsets: `[{"topic", "partitions": [{"partition", "offset", "metadata"}]}]`;
        offset -1 where the group has committed nothing, metadata None where none was committed
        (KafkaJS). Every topic the group committed to when `topics` is None or empty.

        `resolve_offsets=True` is KafkaJS's: a logical offset (-1 latest, also "nothing
        committed"; -2 earliest) becomes the partition's end or start, and the resolved offsets
        are committed for the group (so the group must have no running members)."""
        check_name(group_id, "group_id")
        check_flag(resolve_offsets, "resolve_offsets")
        committed = await self._fetch_offsets(group_id, topics)
        if not resolve_offsets:
            return committed
        for entry in committed:
            ends = {o["partition"]: o for o in await self.fetch_topic_offsets(entry["topic"])}
            for p in entry["partitions"]:
                if p["offset"] in (_LATEST, _EARLIEST) and p["partition"] in ends:
                    end = ends[p["partition"]]
                    p["offset"] = end["high"] if p["offset"] == _LATEST else end["low"]
            if entry["partitions"]:
                await self._commit(group_id, entry["topic"], entry["partitions"])
        return committed

    async def _fetch_offsets(
        self, group_id: str, topics: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        names = (
            [] if topics is None else check_names(topics, "topics", "topic names", allow_empty=True)
        )
        tps = None
        if names:
            tps = [
                confluent_kafka.TopicPartition(t, p)
                for t in names
                for p in await self._partitions(t)
            ]
        request = confluent_kafka.ConsumerGroupTopicPartitions(group_id, tps)
        results = await _await_all(_start(self._client.list_consumer_group_offsets, [request]))
        fetched = results[group_id].topic_partitions
        _raise_partition_errors("fetch_offsets", group_id, fetched)
        by_topic: dict[str, list[dict[str, Any]]] = {t: [] for t in names}
        for tp in fetched:
            offset = tp.offset if tp.offset >= 0 else -1
            by_topic.setdefault(tp.topic, []).append(
                {"partition": tp.partition, "offset": offset, "metadata": tp.metadata or None}
            )
        return [
            {"topic": t, "partitions": sorted(ps, key=lambda p: p["partition"])}
            for t, ps in by_topic.items()
        ]

    async def set_offsets(
        self, *, group_id: str, topic: str, partitions: Sequence[Mapping[str, Any]]
    ) -> None:
        """Set a stopped group's committed offsets: `partitions=[{"partition", "offset"}]`.
        While the group has running members the broker refuses, and so does this (KafkaJS)."""
        check_name(group_id, "group_id")
        check_name(topic, "topic")
        await self._commit(
            group_id, topic, check_entries(partitions, "partitions", _OFFSET_KEYS, required=2)
        )

    async def _commit(
        self, group_id: str, topic: str, partitions: Sequence[Mapping[str, Any]]
    ) -> None:
        tps = []
        for i, p in enumerate(partitions):
            args: tuple[Any, ...] = (
                topic,
                check_int(p["partition"], f"partitions[{i}]['partition']", minimum=0),
                check_int(p["offset"], f"partitions[{i}]['offset']", minimum=0),
            )
            metadata = check_metadata(p.get("metadata"), f"partitions[{i}]['metadata']")
            if metadata is not None:  # librdkafka takes a str only, never None
                args += (metadata,)
            tps.append(confluent_kafka.TopicPartition(*args))
        request = confluent_kafka.ConsumerGroupTopicPartitions(group_id, tps)
        results = await _await_all(_start(self._client.alter_consumer_group_offsets, [request]))
        _raise_partition_errors("set_offsets", group_id, results[group_id].topic_partitions)

    async def reset_offsets(self, *, group_id: str, topic: str, earliest: bool = False) -> None:
        """Move a stopped group to the start (earliest=True) or the end of `topic`."""
        check_name(group_id, "group_id")
        offsets = await self.fetch_topic_offsets(topic)
        key = "low" if earliest else "high"
        await self.set_offsets(
            group_id=group_id,
            topic=topic,
            partitions=[{"partition": o["partition"], "offset": o[key]} for o in offsets],
        )

    async def fetch_topic_offsets(self, topic: str) -> list[dict[str, int]]:
        """`[{"partition", "offset" (= high), "high", "low"}]` per partition."""
        partitions = await self._partitions(topic)
        low = await self._list_offsets(topic, partitions, rd_admin.OffsetSpec.earliest())
        high = await self._list_offsets(topic, partitions, rd_admin.OffsetSpec.latest())
        return [
            {"partition": p, "offset": high[p], "high": high[p], "low": low[p]} for p in partitions
        ]

    async def fetch_topic_offsets_by_timestamp(
        self, topic: str, timestamp: int | None = None
    ) -> list[dict[str, int]]:
        """The first offset per partition whose timestamp is >= `timestamp` (ms); the end of the
        partition when there is none."""
        spec = (
            rd_admin.OffsetSpec.latest()
            if timestamp is None
            else rd_admin.OffsetSpec.for_timestamp(check_int(timestamp, "timestamp", minimum=0))
        )
        partitions = await self._partitions(topic)
        found = await self._list_offsets(topic, partitions, spec)
        missing = [p for p in partitions if found[p] < 0]
        if missing:
            ends = await self._list_offsets(topic, missing, rd_admin.OffsetSpec.latest())
            found.update(ends)
        return [{"partition": p, "offset": found[p]} for p in partitions]

    async def lag(self, *, group_id: str, topics: Sequence[str]) -> list[dict[str, Any]]:
        """Per partition: committed offset, end offset and lag (end - committed; the whole
        partition from its start when nothing is committed)."""
        names = check_names(topics, "topics", "topic names", allow_empty=True)
        committed = await self.fetch_offsets(group_id=group_id, topics=names)
        out = []
        for entry in committed:
            ends = {o["partition"]: o for o in await self.fetch_topic_offsets(entry["topic"])}
            for p in entry["partitions"]:
                end = ends[p["partition"]]
                start = p["offset"] if p["offset"] >= 0 else end["low"]
                out.append(
                    {
                        "topic": entry["topic"],
                        "partition": p["partition"],
                        "offset": p["offset"],
                        "high": end["high"],
                        "lag": max(0, end["high"] - start),
                    }
                )
        return out

    # -- cluster and records ------------------------------------------------------------------

    async def describe_cluster(self) -> dict[str, Any]:
        """`{"brokers": [{"node_id", "host", "port"}], "controller", "cluster_id"}` (KafkaJS);
        `controller` is None when the cluster names none."""
        described = await _await(_start(self._client.describe_cluster))
        controller = described.controller
        return {
            "brokers": [
                {"node_id": node.id, "host": node.host, "port": node.port}
                for node in sorted(described.nodes, key=lambda node: node.id)
            ],
            "controller": None if controller is None or controller.id < 0 else controller.id,
            "cluster_id": described.cluster_id,
        }

    async def delete_topic_records(
        self, *, topic: str, partitions: Sequence[Mapping[str, Any]], timeout_ms: int = 5_000
    ) -> None:
        """Delete the records before `offset` in each partition (`partitions=[{"partition",
        "offset"}]`; offset -1: every record, up to the partition's end), as KafkaJS's
        deleteTopicRecords. A partition the broker refuses raises DeleteTopicRecordsError, its
        `partitions` naming each failed one with its error."""
        check_name(topic, "topic")
        entries = check_entries(partitions, "partitions", ("partition", "offset"), required=2)
        timeout_s = check_timeout(timeout_ms) / 1000
        tps = [
            confluent_kafka.TopicPartition(
                topic,
                check_int(p["partition"], f"partitions[{i}]['partition']", minimum=0),
                check_int(p["offset"], f"partitions[{i}]['offset']", minimum=-1),
            )
            for i, p in enumerate(entries)
        ]
        futures = _start(
            self._client.delete_records, tps, request_timeout=timeout_s, operation_timeout=timeout_s
        )
        failed = []
        for tp, future in futures.items():
            try:
                await _await(future)
            except KafkaError as exc:
                failed.append({"partition": tp.partition, "offset": tp.offset, "error": exc})
        if failed:
            where = ", ".join(f"{topic}[{f['partition']}]: {f['error']}" for f in failed)
            raise DeleteTopicRecordsError(
                f"delete_topic_records failed for {where}",
                topic=topic,
                partitions=sorted(failed, key=lambda f: f["partition"]),
                code=failed[0]["error"].code,
            )

    # -- ACLs ---------------------------------------------------------------------------------
    # KafkaJS's ACL calls (CreateAcls, DescribeAcls, DeleteAcls). A broker without an authorizer
    # (Kafka's or klamm's) answers them SECURITY_DISABLED, raised as a RequestError.

    async def create_acls(self, *, acl: Sequence[Mapping[str, Any]]) -> bool:
        """`acl=[{"resource_type", "resource_name", "resource_pattern_type", "principal",
        "host", "operation", "permission_type"}]`, KafkaJS's enums (acls.py) or their codes."""
        bindings = [
            binding(e, f"acl[{i}]", is_filter=False)
            for i, e in enumerate(check_entries(acl, "acl", ACL_KEYS, required=len(ACL_KEYS)))
        ]
        await _await_all(_start(self._client.create_acls, bindings))
        return True

    async def describe_acls(self, **acl_filter: Any) -> dict[str, Any]:
        """The ACLs matching a filter (KafkaJS's describeAcls fields; a missing one matches
        any): `{"resources": [{"resource_type", "resource_name", "resource_pattern_type",
        "acls": [{"principal", "host", "operation", "permission_type"}]}]}`."""
        (checked,) = check_entries([acl_filter], "describe_acls", ACL_KEYS, required=0)
        found = await _await(
            _start(self._client.describe_acls, binding(checked, "describe_acls", is_filter=True))
        )
        return {"resources": acl_resources(found)}

    async def delete_acls(self, *, filters: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Delete the ACLs matching each filter: `{"filter_responses": [{"match_acls":
        [...]}]}`, one per filter, in order (KafkaJS's shape)."""
        checked = check_entries(filters, "filters", ACL_KEYS, required=0)
        rd_filters = [binding(f, f"filters[{i}]", is_filter=True) for i, f in enumerate(checked)]
        deleted = await _await_all(_start(self._client.delete_acls, rd_filters))
        return {
            "filter_responses": [
                {"error_code": 0, "match_acls": [as_dict(a) for a in deleted[f]]}
                for f in rd_filters
            ]
        }

    async def _partitions(self, topic: str) -> list[int]:
        # Never creates `topic` (invariant 2): the admin's librdkafka has auto-creation off.
        check_name(topic, "topic")
        md = await self._in_thread(self._client.list_topics, topic, 10)
        tmd = md.topics.get(topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            raise unknown_topic(topic)
        return sorted(tmd.partitions)

    async def _list_offsets(
        self, topic: str, partitions: Sequence[int], spec: Any
    ) -> dict[int, int]:
        if not partitions:
            raise ConfigError("no partitions")
        request = {confluent_kafka.TopicPartition(topic, p): spec for p in partitions}
        results = await _await_all(_start(self._client.list_offsets, request))
        return {tp.partition: int(info.offset) for tp, info in results.items()}
