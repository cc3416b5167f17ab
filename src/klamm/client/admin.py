"""The admin client: KafkaJS's admin methods in snake_case, same arguments, dict results.

confluent-kafka's AdminClient returns concurrent futures for most calls; we await them with
`asyncio.wrap_future` (no thread blocked on the loop). Metadata (`list_topics`) blocks, so it runs
in a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import confluent_kafka
from confluent_kafka import admin as _rd_admin

from klamm.client.connectivity import CONNECT_TIMEOUT_S, create_client, reach_cluster
from klamm.client.errors import ConfigError, KafkaError, StateError, TopicError, from_librdkafka
from klamm.client.events import Connectable, EventEmitter, Events

T = TypeVar("T")
# confluent_kafka.admin re-exports its classes without `__all__`, which mypy --strict rejects.
rd_admin: Any = _rd_admin


class ResourceTypes(enum.Enum):
    """Config resource types, with Kafka's numeric codes as KafkaJS's ResourceTypes."""

    TOPIC = 2
    BROKER = 4
    GROUP = 3


_RD_RESOURCE = {
    ResourceTypes.TOPIC: rd_admin.ResourceType.TOPIC,
    ResourceTypes.BROKER: rd_admin.ResourceType.BROKER,
    ResourceTypes.GROUP: rd_admin.ResourceType.GROUP,
}


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
        [{"name", "value"}]}]`. Returns False when every topic already existed (KafkaJS)."""
        new = []
        for t in topics:
            config = {e["name"]: str(e["value"]) for e in t.get("config_entries", ())}
            new.append(
                rd_admin.NewTopic(
                    t["topic"],
                    num_partitions=int(t.get("num_partitions", -1)),
                    replication_factor=int(t.get("replication_factor", -1)),
                    config=config,
                )
            )
        futures = self._client.create_topics(
            new, operation_timeout=timeout_ms / 1000, validate_only=validate_only
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
            await self._wait_for_topics([t["topic"] for t in topics], timeout_ms)
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
        await _await_all(
            self._client.delete_topics(list(topics), operation_timeout=timeout_ms / 1000)
        )

    async def list_topics(self) -> list[str]:
        md = await self._in_thread(self._client.list_topics, None, 10)
        return sorted(name for name in md.topics if not name.startswith("__"))

    async def fetch_topic_metadata(self, *, topics: Sequence[str] | None = None) -> dict[str, Any]:
        """`{"topics": [{"name", "partitions": [{"partition_id", "leader", "replicas", "isr",
        "partition_error_code"}]}]}`"""
        md = await self._in_thread(self._client.list_topics, None, 10)
        names = list(topics) if topics else sorted(n for n in md.topics if not n.startswith("__"))
        result = []
        for name in names:
            tmd = md.topics.get(name)
            if tmd is None or tmd.error is not None:
                raise TopicError(f"unknown topic {name!r}", code=3, name="UNKNOWN_TOPIC_OR_PART")
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
        self, *, topic_partitions: Sequence[Mapping[str, Any]], timeout_ms: int = 5_000
    ) -> None:
        """`topic_partitions=[{"topic", "count"}]`: `count` is the new total."""
        new = [rd_admin.NewPartitions(tp["topic"], int(tp["count"])) for tp in topic_partitions]
        await _await_all(self._client.create_partitions(new, operation_timeout=timeout_ms / 1000))

    # -- configs ------------------------------------------------------------------------------

    async def describe_configs(
        self, *, resources: Sequence[Mapping[str, Any]], include_synonyms: bool = False
    ) -> dict[str, Any]:
        """`resources=[{"type": ResourceTypes.TOPIC, "name", "config_names": [...]}]`."""
        rd_resources = [
            rd_admin.ConfigResource(_RD_RESOURCE[ResourceTypes(r["type"])], r["name"])
            for r in resources
        ]
        results = await _await_all(self._client.describe_configs(rd_resources))
        out = []
        for r, res in zip(resources, rd_resources, strict=True):
            entries = results[res]
            wanted = set(r.get("config_names") or entries)
            out.append(
                {
                    "resource_type": ResourceTypes(r["type"]),
                    "resource_name": r["name"],
                    "config_entries": [
                        {
                            "config_name": e.name,
                            "config_value": e.value,
                            "read_only": e.is_read_only,
                            "is_default": e.is_default,
                            "is_sensitive": e.is_sensitive,
                        }
                        for name, e in sorted(entries.items())
                        if name in wanted
                    ],
                }
            )
        return {"resources": out}

    async def alter_configs(self, *, resources: Sequence[Mapping[str, Any]]) -> None:
        """`resources=[{"type", "name", "config_entries": [{"name", "value"}]}]`. Sent as
        incremental SETs (IncrementalAlterConfigs): entries not named keep their values."""
        rd_resources = []
        for r in resources:
            entries = [
                rd_admin.ConfigEntry(
                    e["name"],
                    str(e["value"]),
                    incremental_operation=rd_admin.AlterConfigOpType.SET,
                )
                for e in r["config_entries"]
            ]
            rd_resources.append(
                rd_admin.ConfigResource(
                    _RD_RESOURCE[ResourceTypes(r["type"])], r["name"], incremental_configs=entries
                )
            )
        await _await_all(self._client.incremental_alter_configs(rd_resources))

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
        results = await _await_all(self._client.describe_consumer_groups(list(group_ids)))
        groups = []
        for gid in group_ids:
            d = results[gid]
            groups.append(
                {
                    "group_id": d.group_id,
                    "state": d.state.name,
                    "protocol": d.partition_assignor,
                    "members": [
                        {
                            "member_id": m.member_id,
                            "client_id": m.client_id,
                            "client_host": m.host,
                            "group_instance_id": m.group_instance_id,
                            "assignment": [
                                (tp.topic, tp.partition) for tp in m.assignment.topic_partitions
                            ],
                        }
                        for m in d.members
                    ],
                }
            )
        return {"groups": groups}

    async def delete_groups(self, *, group_ids: Sequence[str]) -> None:
        await _await_all(self._client.delete_consumer_groups(list(group_ids)))

    async def fetch_offsets(
        self, *, group_id: str, topics: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Committed offsets: `[{"topic", "partitions": [{"partition", "offset"}]}]`; -1 where
        the group has committed nothing (KafkaJS)."""
        tps = None
        if topics:
            tps = [
                confluent_kafka.TopicPartition(t, p)
                for t in topics
                for p in await self._partitions(t)
            ]
        request = confluent_kafka.ConsumerGroupTopicPartitions(group_id, tps)
        results = await _await_all(self._client.list_consumer_group_offsets([request]))
        by_topic: dict[str, list[dict[str, int]]] = {t: [] for t in topics or ()}
        for tp in results[group_id].topic_partitions:
            offset = tp.offset if tp.offset >= 0 else -1
            by_topic.setdefault(tp.topic, []).append({"partition": tp.partition, "offset": offset})
        return [
            {"topic": t, "partitions": sorted(ps, key=lambda p: p["partition"])}
            for t, ps in by_topic.items()
        ]

    async def set_offsets(
        self, *, group_id: str, topic: str, partitions: Sequence[Mapping[str, Any]]
    ) -> None:
        """Set a (stopped) group's committed offsets: `partitions=[{"partition", "offset"}]`."""
        tps = [
            confluent_kafka.TopicPartition(topic, int(p["partition"]), int(p["offset"]))
            for p in partitions
        ]
        request = confluent_kafka.ConsumerGroupTopicPartitions(group_id, tps)
        await _await_all(self._client.alter_consumer_group_offsets([request]))

    async def reset_offsets(self, *, group_id: str, topic: str, earliest: bool = False) -> None:
        """Move a (stopped) group to the start (earliest=True) or the end of `topic`."""
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
        partitions = await self._partitions(topic)
        spec = (
            rd_admin.OffsetSpec.latest()
            if timestamp is None
            else rd_admin.OffsetSpec.for_timestamp(int(timestamp))
        )
        found = await self._list_offsets(topic, partitions, spec)
        missing = [p for p in partitions if found[p] < 0]
        if missing:
            ends = await self._list_offsets(topic, missing, rd_admin.OffsetSpec.latest())
            found.update(ends)
        return [{"partition": p, "offset": found[p]} for p in partitions]

    async def lag(self, *, group_id: str, topics: Sequence[str]) -> list[dict[str, Any]]:
        """Per partition: committed offset, end offset and lag (end - committed; the whole
        partition from its start when nothing is committed)."""
        committed = await self.fetch_offsets(group_id=group_id, topics=topics)
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

    async def _partitions(self, topic: str) -> list[int]:
        md = await self._in_thread(self._client.list_topics, topic, 10)
        tmd = md.topics.get(topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            raise TopicError(f"unknown topic {topic!r}", code=3, name="UNKNOWN_TOPIC_OR_PART")
        return sorted(tmd.partitions)

    async def _list_offsets(
        self, topic: str, partitions: Sequence[int], spec: Any
    ) -> dict[int, int]:
        if not partitions:
            raise ConfigError("no partitions")
        request = {confluent_kafka.TopicPartition(topic, p): spec for p in partitions}
        results = await _await_all(self._client.list_offsets(request))
        return {tp.partition: int(info.offset) for tp, info in results.items()}
