"""The console's only way to the cluster: the Kafka protocol, through klamm.client.

Topics, groups and offsets go through klamm.client's Admin and Producer where they have the
call; what they lack (one ListOffsets for every partition of the cluster, DescribeConfigs with
source and synonyms, DescribeCluster, a bounded read of a partition range without a group) is
asked of librdkafka directly, with the same connection settings (klamm.client.config), so SSL and
SASL behave as for every other klamm client. Nothing here knows which broker answers: klamm,
Apache Kafka, Tansu or a managed service look the same.

Blocking librdkafka calls run in worker threads; every method here is a coroutine that never
blocks the event loop. The browse consumer is one librdkafka consumer without a group, reused
under a lock (a new one per page would cost a connection and a metadata round trip per click).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import confluent_kafka
from confluent_kafka import admin as _rd_admin

from klamm.client import Kafka, KafkaError
from klamm.client.config import client_config
from klamm.client.connectivity import create_client, reach_cluster
from klamm.client.errors import from_librdkafka

from .config import ConsoleConfig
from .errors import AUTHORIZATION_FAILURES, ConsoleError, NotAuthorized, principal_of
from .wire import Transport, WireConfigError, WireError

T = TypeVar("T")
rd: Any = _rd_admin  # confluent_kafka.admin re-exports without __all__ (mypy --strict)

# Seconds any single request to the cluster may take before the page shows an error instead.
REQUEST_TIMEOUT_S = 10.0
# How long a browse waits for a partition's next fetch before calling the page complete: the
# range to read is known (it ends at the high watermark read just before), so this only matters
# when a broker is slow; two seconds keeps a page from hanging on one.
BROWSE_TIMEOUT_S = 2.0
# Seconds before asking again for sizes after a cluster did not answer DescribeLogDirs.
SIZES_RETRY_S = 600.0
# Worker threads for blocking librdkafka calls: a page makes a few at a time, the sampler one;
# four keep pages quick while a slow browse (at most BROWSE_TIMEOUT_S) holds one.
CONSOLE_THREADS = 4
# Messages taken from librdkafka per call: large enough to amortise the call, small enough that
# the byte budget is checked often.
CONSUME_BATCH = 500
# librdkafka refuses fetch sizes below its message.max.bytes default (1 MiB).
FETCH_FLOOR_BYTES = 1_048_576
# Group states in which the broker accepts an OffsetCommit from an admin (no active members):
# Kafka's GroupCoordinator refuses it otherwise, and so do the CLI and the console.
RESETTABLE_STATES = frozenset({"EMPTY", "DEAD", "UNKNOWN"})


# DescribeAcls answers that mean "no ACLs here" rather than a failure: the broker lacks the API,
# or has no authorizer configured (Kafka's SECURITY_DISABLED).
_NO_ACLS = frozenset(
    {
        confluent_kafka.KafkaError._UNSUPPORTED_FEATURE,
        confluent_kafka.KafkaError.UNSUPPORTED_VERSION,
        confluent_kafka.KafkaError.SECURITY_DISABLED,
    }
)


# DescribeAcls answers meaning "no ACLs here" rather than a failure, as wire.py reads them:
# no authorizer (SECURITY_DISABLED, 54), or a version the broker does not serve (35).
_NO_ACLS_CODES = frozenset({54, 35})


def _enum_name(enum: Any, value: int) -> str:
    """The name librdkafka gives a Kafka enum value (e.g. AclOperation 3 is READ)."""
    try:
        return str(enum(int(value)).name)
    except ValueError:
        return str(int(value))  # a value newer than this librdkafka: shown as a number


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    low: int
    high: int

    @property
    def messages(self) -> int:
        return max(0, self.high - self.low)


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: tuple[PartitionInfo, ...]
    internal: bool

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.partitions)

    @property
    def end_offsets(self) -> int:
        return sum(p.high for p in self.partitions)


@dataclass(frozen=True)
class ConfigItem:
    name: str
    value: str | None
    source: str
    default: str | None
    is_default: bool
    read_only: bool
    sensitive: bool


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    @property
    def size(self) -> int:
        return (
            len(self.key or b"")
            + len(self.value or b"")
            + sum(len(k) + len(v or b"") for k, v in self.headers)
        )


@dataclass
class Page:
    records: list[Record]
    scanned: int = 0
    bytes_read: int = 0
    truncated: bool = False  # stopped by the byte budget or the scan bound
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (low, high)


@dataclass(frozen=True)
class MemberInfo:
    member_id: str
    client_id: str
    host: str
    assignment: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class GroupOffset:
    topic: str
    partition: int
    committed: int  # -1: nothing committed
    high: int
    low: int

    @property
    def lag(self) -> int:
        start = self.committed if self.committed >= 0 else self.low
        return max(0, self.high - start)


@dataclass(frozen=True)
class GroupInfo:
    group_id: str
    state: str
    protocol: str
    members: tuple[MemberInfo, ...]
    offsets: tuple[GroupOffset, ...]

    @property
    def lag(self) -> int:
        return sum(o.lag for o in self.offsets)

    @property
    def resettable(self) -> bool:
        return self.state.upper() in RESETTABLE_STATES


@dataclass(frozen=True)
class ResetRow:
    topic: str
    partition: int
    current: int
    target: int


def _await_futures(futures: Mapping[Any, concurrent.futures.Future[Any]]) -> dict[Any, Any]:
    out = {}
    for key, future in futures.items():
        try:
            out[key] = future.result(timeout=REQUEST_TIMEOUT_S)
        except confluent_kafka.KafkaException as exc:
            raise from_librdkafka(exc) from None
        except concurrent.futures.TimeoutError:
            raise ConsoleError("the cluster did not answer in time") from None
    return out


class Cluster:
    """One cluster, seen through the Kafka protocol. `connect()` before use, `close()` after."""

    def __init__(self, config: ConsoleConfig) -> None:
        settings: dict[str, Any] = {"brokers": config.brokers, "ssl": config.ssl}
        if config.sasl:
            settings["sasl"] = config.sasl
        self._kafka = Kafka(client_id="klamm-console", config=config.client_config, **settings)
        self._admin = self._kafka.admin()
        self._producer = self._kafka.producer(allow_auto_topic_creation=False)
        self._producer_connected = False
        self._conf = client_config(
            client_id="klamm-console", extra=config.client_config, **settings
        )
        self._page_bytes = config.page_bytes
        self.principal = principal_of(self._conf)
        # DescribeLogDirs, ListTransactions, DescribeTransactions and DescribeProducers, which
        # librdkafka lacks, go through wire.py, connected as librdkafka is. Settings it cannot
        # use (a Kerberos login) leave those parts out, saying why, and the rest working.
        self._wire: Transport | None = None
        self._wire_problem = ""
        try:
            self._wire = Transport.from_config(self._conf)
        except WireConfigError as exc:
            self._wire_problem = str(exc)
        self._sizes_unsupported_until = 0.0
        self._connect_timeout_s = config.connect_timeout_s
        self._rd_admin: Any = None
        self._browser: Any = None
        self._browse_lock = threading.Lock()
        # The console's own threads for librdkafka's blocking calls: beside a broker, the
        # event loop's default executor is the broker's (it flushes logs there), and a slow
        # cluster answer must never hold up a broker's flush.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=CONSOLE_THREADS, thread_name_prefix="klamm-console"
        )

    async def connect(self) -> None:
        conf = {**self._conf, "allow.auto.create.topics": False}
        rd_admin, watch = create_client(rd.AdminClient, conf)
        await self._thread(reach_cluster, rd_admin, watch, self._connect_timeout_s)
        self._rd_admin = rd_admin
        await self._admin.connect()

    async def close(self) -> None:
        if self._producer_connected:
            await self._producer.disconnect(timeout_ms=5_000)
            self._producer_connected = False
        await self._admin.disconnect()
        browser, self._browser = self._browser, None
        if browser is not None:
            await self._thread(browser.close)
        self._rd_admin = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    @contextlib.contextmanager
    def _needs(self, operation: str, kind: str, name: str = "") -> Iterator[None]:
        """Turns the cluster's authorization refusal of what runs inside into NotAuthorized,
        naming `operation` on the resource (`kind` topic, group, transactional id, cluster)."""
        try:
            yield
        except KafkaError as exc:
            if exc.code in AUTHORIZATION_FAILURES:
                raise NotAuthorized(self.principal, operation, kind, name, exc.code) from None
            raise

    def _refused(self, code: int, operation: str, kind: str, name: str = "") -> None:
        """NotAuthorized for an authorization error code in an answer read by wire.py."""
        if int(code) in AUTHORIZATION_FAILURES:
            raise NotAuthorized(self.principal, operation, kind, name, int(code))

    async def _thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await self._thread(fn, *args)
        except confluent_kafka.KafkaException as exc:
            raise from_librdkafka(exc) from None

    # -- cluster and topics -----------------------------------------------------------------

    async def describe(self) -> dict[str, Any]:
        """Cluster id, controller and brokers (DescribeCluster; Metadata when not served)."""
        try:
            futures = {"c": self._rd_admin.describe_cluster(request_timeout=REQUEST_TIMEOUT_S)}
            desc = (await self._thread(_await_futures, futures))["c"]
            nodes = [(n.id, n.host, n.port, n.rack) for n in desc.nodes]
            return {
                "cluster_id": desc.cluster_id,
                "controller": desc.controller.id if desc.controller else None,
                "brokers": sorted(nodes),
            }
        except KafkaError:
            md = await self._call(self._rd_admin.list_topics, None, REQUEST_TIMEOUT_S)
            return {
                "cluster_id": md.cluster_id,
                "controller": md.controller_id,
                "brokers": sorted((b.id, b.host, b.port, None) for b in md.brokers.values()),
            }

    async def topics(self, names: Sequence[str] | None = None) -> list[TopicInfo]:
        """Every topic (or `names`), with leaders, replicas and start and end offsets."""
        md = await self._call(self._rd_admin.list_topics, None, REQUEST_TIMEOUT_S)
        wanted = [
            t
            for t in sorted(md.topics)
            if (names is None or t in names) and md.topics[t].error is None
        ]
        tps = [(t, p) for t in wanted for p in sorted(md.topics[t].partitions)]
        low = await self._offsets(tps, rd.OffsetSpec.earliest())
        high = await self._offsets(tps, rd.OffsetSpec.latest())
        out = []
        for t in wanted:
            tmd = md.topics[t]
            parts = tuple(
                PartitionInfo(
                    p,
                    tmd.partitions[p].leader,
                    tuple(tmd.partitions[p].replicas),
                    tuple(tmd.partitions[p].isrs),
                    low.get((t, p), -1),
                    high.get((t, p), -1),
                )
                for p in sorted(tmd.partitions)
            )
            out.append(TopicInfo(t, parts, t.startswith("__")))
        return out

    async def topic(self, name: str) -> TopicInfo:
        found = await self.topics([name])
        if not found:
            # A full listing leaves out the topics the user may not describe; asked by name, the
            # broker says which it is (TOPIC_AUTHORIZATION_FAILED whether or not it exists).
            md = await self._call(self._rd_admin.list_topics, name, REQUEST_TIMEOUT_S)
            tmd = md.topics.get(name)
            if tmd is not None and tmd.error is not None:
                self._refused(tmd.error.code(), "Describe", "topic", name)
            raise ConsoleError(f"no topic named {name!r}")
        return found[0]

    async def end_offsets(self) -> dict[tuple[str, int], int]:
        """The end offset of every partition: what the sampler turns into produce rates."""
        md = await self._call(self._rd_admin.list_topics, None, REQUEST_TIMEOUT_S)
        tps = [(t, p) for t, tmd in md.topics.items() if tmd.error is None for p in tmd.partitions]
        return await self._offsets(tps, rd.OffsetSpec.latest())

    async def _offsets(
        self, tps: Sequence[tuple[str, int]], spec: Any
    ) -> dict[tuple[str, int], int]:
        if not tps:
            return {}
        request = {confluent_kafka.TopicPartition(t, p): spec for t, p in tps}

        def run() -> dict[tuple[str, int], int]:
            futures = self._rd_admin.list_offsets(request, request_timeout=REQUEST_TIMEOUT_S)
            out = {}
            for tp, future in futures.items():
                try:
                    out[(tp.topic, tp.partition)] = int(future.result(REQUEST_TIMEOUT_S).offset)
                except (confluent_kafka.KafkaException, concurrent.futures.TimeoutError):
                    out[(tp.topic, tp.partition)] = -1  # shown as unknown, never a crash
            return out

        return await self._thread(run)

    async def create_topic(self, name: str, partitions: int, replication: int) -> None:
        with self._needs("Create", "topic", name):
            created = await self._admin.create_topics(
                topics=[
                    {"topic": name, "num_partitions": partitions, "replication_factor": replication}
                ]
            )
        if not created:
            raise ConsoleError(f"topic {name!r} already exists")

    async def delete_topic(self, name: str) -> None:
        with self._needs("Delete", "topic", name):
            await self._admin.delete_topics(topics=[name])

    async def add_partitions(self, name: str, total: int) -> None:
        with self._needs("Alter", "topic", name):
            await self._admin.create_partitions(topic_partitions=[{"topic": name, "count": total}])

    async def configs(self, topic: str) -> list[ConfigItem]:
        resource = rd.ConfigResource(rd.ResourceType.TOPIC, topic)

        def run() -> dict[str, Any]:
            futures = self._rd_admin.describe_configs([resource], request_timeout=10)
            return dict(_await_futures(futures)[resource])

        with self._needs("DescribeConfigs", "topic", topic):
            entries = await self._call(run)
        out = []
        for name in sorted(entries):
            e = entries[name]
            # The default is what applies once the override is gone: the first synonym (they
            # come in precedence order) from a lower level than the entry's own source.
            default = e.value if e.is_default else None
            for syn in getattr(e, "synonyms", {}).values():
                if default is None and syn.source != e.source:
                    default = syn.value
            out.append(
                ConfigItem(
                    name=name,
                    value=None if e.is_sensitive else e.value,
                    source=str(rd.ConfigSource(e.source).name),
                    default=default,
                    is_default=bool(e.is_default),
                    read_only=bool(e.is_read_only),
                    sensitive=bool(e.is_sensitive),
                )
            )
        return out

    async def set_config(self, topic: str, name: str, value: str | None) -> None:
        """Set one topic config, or (value None) remove the override so the default applies."""
        op = rd.AlterConfigOpType.DELETE if value is None else rd.AlterConfigOpType.SET
        entry = rd.ConfigEntry(name, "" if value is None else value, incremental_operation=op)
        resource = rd.ConfigResource(rd.ResourceType.TOPIC, topic, incremental_configs=[entry])

        def run() -> None:
            _await_futures(self._rd_admin.incremental_alter_configs([resource]))

        with self._needs("AlterConfigs", "topic", topic):
            await self._call(run)

    # -- messages ---------------------------------------------------------------------------

    async def produce(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Mapping[str, bytes],
        partition: int | None,
    ) -> tuple[int, int]:
        if not self._producer_connected:
            await self._producer.connect()
            self._producer_connected = True
        message: dict[str, Any] = {"key": key, "value": value, "headers": dict(headers)}
        if partition is not None:
            message["partition"] = partition
        with self._needs("Write", "topic", topic):
            [meta] = await self._producer.send(topic=topic, messages=[message], timeout_ms=10_000)
        return meta.partition, meta.offset

    async def offsets_for_time(
        self, topic: str, partitions: Iterable[int], ts: int
    ) -> dict[int, int]:
        found = await self._offsets(
            [(topic, p) for p in partitions], rd.OffsetSpec.for_timestamp(ts)
        )
        return {p: o for (_, p), o in found.items()}

    async def read(
        self,
        topic: str,
        starts: Mapping[int, tuple[int, int]],
        *,
        keep: Callable[[Record], bool],
        max_records: int,
        max_scan: int,
        from_end: bool,
    ) -> Page:
        """Read partitions from `starts[p][0]` up to (not including) `starts[p][1]`, keeping the
        records `keep` accepts: the first `max_records` of them, or with `from_end` the last.
        Never reads more than the page byte budget or `max_scan` records."""
        with self._needs("Read", "topic", topic):
            return await self._call(
                self._read_blocking, topic, dict(starts), keep, max_records, max_scan, from_end
            )

    def _browser_consumer(self) -> Any:
        if self._browser is None:
            conf = {
                **self._conf,
                "group.id": "klamm-console-browser",  # never joins: assign() only, no commits
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 10,  # the range is known: never wait for more data
                # librdkafka's own prefetch, at least its default message size (it refuses less);
                # the page's byte budget itself is counted in _read_blocking.
                "fetch.max.bytes": max(self._page_bytes, FETCH_FLOOR_BYTES),
                "max.partition.fetch.bytes": FETCH_FLOOR_BYTES,
                "queued.max.messages.kbytes": max(self._page_bytes, FETCH_FLOOR_BYTES) // 1024,
                "allow.auto.create.topics": False,
            }
            self._browser, _ = create_client(confluent_kafka.Consumer, conf)
        return self._browser

    def _read_blocking(
        self,
        topic: str,
        starts: dict[int, tuple[int, int]],
        keep: Callable[[Record], bool],
        max_records: int,
        max_scan: int,
        from_end: bool,
    ) -> Page:
        page = Page(records=[], ranges=starts)
        todo = {p: r for p, r in starts.items() if r[0] < r[1]}
        if not todo:
            return page
        with self._browse_lock:
            consumer = self._browser_consumer()
            consumer.assign(
                [confluent_kafka.TopicPartition(topic, p, r[0]) for p, r in todo.items()]
            )
            position = {p: r[0] for p, r in todo.items()}
            kept: dict[int, int] = {}
            deadline = time.monotonic() + BROWSE_TIMEOUT_S
            try:
                while todo and time.monotonic() < deadline:
                    # Ask for no more than the range still holds: consume() then returns as soon
                    # as they arrive instead of waiting out its timeout for a full batch.
                    wanted = min(
                        CONSUME_BATCH, sum(max(1, r[1] - position[p]) for p, r in todo.items())
                    )
                    for msg in consumer.consume(num_messages=wanted, timeout=0.05):
                        p = msg.partition()
                        if p not in todo:
                            continue
                        err = msg.error()
                        if err is not None:
                            if err.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                                del todo[p]
                                continue
                            raise from_librdkafka(err)
                        offset = msg.offset()
                        if offset < starts[p][0]:
                            continue  # fetched for an earlier page before this assign()
                        if offset >= todo[p][1]:
                            del todo[p]
                            continue
                        record = Record(
                            p,
                            offset,
                            msg.timestamp()[1],
                            msg.key(),
                            msg.value(),
                            tuple(msg.headers() or ()),
                        )
                        page.scanned += 1
                        page.bytes_read += record.size
                        if keep(record):
                            page.records.append(record)
                            kept[p] = kept.get(p, 0) + 1
                        position[p] = offset + 1
                        # Oldest first, a partition is done once it gave a page's worth: the
                        # page is the oldest of every partition's first `max_records`.
                        if offset + 1 >= todo[p][1] or (
                            not from_end and kept.get(p, 0) >= max_records
                        ):
                            del todo[p]
                        if page.bytes_read >= self._page_bytes or page.scanned >= max_scan:
                            page.truncated = bool(todo)
                            todo.clear()
                            break
            finally:
                consumer.unassign()
        page.records.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
        page.records = page.records[-max_records:] if from_end else page.records[:max_records]
        return page

    # -- groups -----------------------------------------------------------------------------

    async def group_ids(self) -> list[tuple[str, str]]:
        listed = await self._admin.list_groups()
        return sorted((g["group_id"], g["state"]) for g in listed["groups"])

    async def group_summaries(self) -> list[dict[str, Any]]:
        """Every group's id, state, protocol and member count: one ListGroups and one
        DescribeGroups for all of them (the lists page; lag comes from the sampler)."""
        ids = [gid for gid, _ in await self.group_ids()]
        if not ids:
            return []
        described = await self._admin.describe_groups(group_ids=ids)
        return [
            {"group_id": g["group_id"], "state": g["state"], "protocol": g["protocol"] or "",
             "members": len(g["members"])}
            for g in described["groups"]
        ]  # fmt: skip

    async def group(self, group_id: str) -> GroupInfo:
        with self._needs("Describe", "group", group_id):
            described = (await self._admin.describe_groups(group_ids=[group_id]))["groups"][0]
            committed = await self._admin.fetch_offsets(group_id=group_id)
        tps = [(e["topic"], p["partition"]) for e in committed for p in e["partitions"]]
        low = await self._offsets(tps, rd.OffsetSpec.earliest())
        high = await self._offsets(tps, rd.OffsetSpec.latest())
        offsets = tuple(
            GroupOffset(
                e["topic"],
                p["partition"],
                p["offset"],
                high.get((e["topic"], p["partition"]), -1),
                low.get((e["topic"], p["partition"]), -1),
            )
            for e in committed
            for p in e["partitions"]
        )
        members = tuple(
            MemberInfo(
                m["member_id"], m["client_id"], m["client_host"], tuple(sorted(m["assignment"]))
            )
            for m in described["members"]
        )
        return GroupInfo(
            group_id, described["state"], described["protocol"] or "", members, offsets
        )

    async def reset_plan(
        self, group: GroupInfo, topic: str, strategy: str, value: str
    ) -> list[ResetRow]:
        """Where a reset would move each partition of `topic` (the dry-run preview)."""
        info = await self.topic(topic)
        current = {o.partition: o.committed for o in group.offsets if o.topic == topic}
        if strategy == "earliest":
            target = {p.partition: p.low for p in info.partitions}
        elif strategy == "latest":
            target = {p.partition: p.high for p in info.partitions}
        elif strategy == "timestamp":
            try:
                ts = int(value)
            except ValueError:
                raise ConsoleError(f"timestamp {value!r} is not milliseconds") from None
            found = await self.offsets_for_time(topic, (p.partition for p in info.partitions), ts)
            target = {
                p.partition: (found[p.partition] if found[p.partition] >= 0 else p.high)
                for p in info.partitions
            }
        elif strategy == "offset":
            try:
                wanted = int(value)
            except ValueError:
                raise ConsoleError(f"offset {value!r} is not a number") from None
            if wanted < 0:
                raise ConsoleError("offset must be 0 or more")
            # As kafka-consumer-groups.sh --to-offset: clamped into each partition's range.
            target = {p.partition: min(max(wanted, p.low), p.high) for p in info.partitions}
        else:
            raise ConsoleError(f"unknown reset strategy {strategy!r}")
        return [ResetRow(topic, p, current.get(p, -1), target[p]) for p in sorted(target)]

    async def apply_reset(self, group_id: str, rows: Sequence[ResetRow]) -> None:
        if not rows:
            return
        with self._needs("Read", "group", group_id):
            await self._admin.set_offsets(
                group_id=group_id,
                topic=rows[0].topic,
                partitions=[{"partition": r.partition, "offset": r.target} for r in rows],
            )

    async def committed_totals(
        self, group_ids: Sequence[str]
    ) -> dict[str, dict[tuple[str, int], int]]:
        """Committed offsets of each group (the sampler's consume rates and lag history)."""
        out: dict[str, dict[tuple[str, int], int]] = {}
        for gid in group_ids:
            try:
                entries = await self._admin.fetch_offsets(group_id=gid)
            except KafkaError:
                continue
            out[gid] = {
                (e["topic"], p["partition"]): p["offset"]
                for e in entries
                for p in e["partitions"]
                if p["offset"] >= 0
            }
        return out

    # -- sizes (DescribeLogDirs, wire.py) -----------------------------------------------------

    async def sizes(self) -> dict[str, int] | None:
        """Bytes on disk per topic, all replicas and log directories together; None when the
        cluster does not serve DescribeLogDirs, the console cannot ask it, or its user may not
        describe the cluster. A refusal is remembered for a while: each attempt costs a
        connection, and a broker without the API logs it."""
        if self._wire is None or time.monotonic() < self._sizes_unsupported_until:
            return None
        wire = self._wire
        brokers = (await self.describe())["brokers"]

        def run() -> dict[str, int] | None:
            sizes: dict[str, int] = {}
            answered = False
            for _node, host, port, _rack in brokers:
                answer = wire.describe_log_dirs(host, port)
                # A broker has at least one log directory: none at all is v2's way of saying
                # the user lacks Describe on the cluster (v3 adds an error code). Unknown, not 0.
                answered = answered or bool(answer.results)
                for result in answer.results:
                    if result.error_code != 0:
                        continue
                    for t in result.topics:
                        total = sum(max(0, int(p.partition_size)) for p in t.partitions)
                        sizes[str(t.name)] = sizes.get(str(t.name), 0) + total
            return sizes if answered else None

        try:
            return await self._thread(run)
        except WireError:
            self._sizes_unsupported_until = time.monotonic() + SIZES_RETRY_S
            return None

    # -- ACLs ---------------------------------------------------------------------------------

    async def acls(self) -> list[dict[str, str]] | None:
        """Every ACL (DescribeAcls with a match-all filter, through wire.py: librdkafka drops the
        answer's error code, and a user without Describe on the cluster would see an empty
        list); None when the cluster does not serve ACLs (no authorizer: SECURITY_DISABLED)."""
        if self._wire is None:
            return await self._acls_through_librdkafka()
        wire = self._wire
        brokers = (await self.describe())["brokers"]
        if not brokers:
            raise ConsoleError("the cluster lists no brokers to ask for its ACLs")
        _node, host, port, _rack = brokers[0]  # every broker answers for the whole cluster
        try:
            answer = await self._thread(wire.describe_acls, host, port)
        except WireError as exc:
            raise ConsoleError(str(exc)) from None
        code = int(answer.error_code)
        if code in _NO_ACLS_CODES:
            return None
        self._refused(code, "Describe", "cluster")
        if code != 0:
            raise ConsoleError(f"broker {host}:{port} refused DescribeAcls: error {code} "
                               f"{answer.error_message or ''}".strip())  # fmt: skip
        rows = [
            {"resource": _enum_name(rd.ResourceType, r.resource_type), "name": str(r.resource_name),
             "pattern": _enum_name(rd.ResourcePatternType, r.pattern_type),
             "principal": str(a.principal), "host": str(a.host),
             "operation": _enum_name(rd.AclOperation, a.operation),
             "permission": _enum_name(rd.AclPermissionType, a.permission_type)}
            for r in answer.resources
            for a in r.acls
        ]  # fmt: skip
        return sorted(rows, key=lambda r: (r["resource"], r["name"], r["principal"]))

    async def _acls_through_librdkafka(self) -> list[dict[str, str]] | None:
        """The ACLs as librdkafka lists them, for settings wire.py cannot use (GSSAPI)."""
        match_all = rd.AclBindingFilter(
            rd.ResourceType.ANY, None, rd.ResourcePatternType.ANY, None, None,
            rd.AclOperation.ANY, rd.AclPermissionType.ANY,
        )  # fmt: skip

        def run() -> Any:
            return self._rd_admin.describe_acls(match_all, request_timeout=10).result(
                REQUEST_TIMEOUT_S
            )

        try:
            bindings = await self._thread(run)
        except confluent_kafka.KafkaException as exc:
            err = exc.args[0] if exc.args else None
            code = err.code() if isinstance(err, confluent_kafka.KafkaError) else None
            if code in _NO_ACLS:
                return None
            raise from_librdkafka(exc) from None
        rows = [
            {"resource": b.restype.name, "name": b.name,
             "pattern": b.resource_pattern_type.name, "principal": b.principal, "host": b.host,
             "operation": b.operation.name, "permission": b.permission_type.name}
            for b in bindings
        ]  # fmt: skip
        return sorted(rows, key=lambda r: (r["resource"], r["name"], r["principal"]))

    # -- transactions and producers (wire.py) -----------------------------------------------

    def _transport(self) -> Transport:
        if self._wire is None:
            raise ConsoleError(
                "transactions and producers cannot be shown with these connection settings: "
                f"{self._wire_problem}"
            )
        return self._wire

    async def transactions(self) -> list[dict[str, Any]]:
        """Every transactional id each broker coordinates (ListTransactions), described by its
        coordinator (DescribeTransactions): state, producer, timeout, start, partitions."""
        wire = self._transport()
        brokers = (await self.describe())["brokers"]

        def run() -> list[dict[str, Any]]:
            out = []
            for node, host, port, _rack in brokers:
                listed = wire.list_transactions(host, port)
                if listed.error_code != 0:
                    raise ConsoleError(f"broker {node} answered ListTransactions with error "
                                       f"{int(listed.error_code)}")  # fmt: skip
                ids = sorted(str(t.transactional_id) for t in listed.transaction_states)
                if not ids:
                    continue
                described = wire.describe_transactions(host, port, ids)
                for t in described.transaction_states:
                    start = t.transaction_start_time
                    out.append({
                        "transactional_id": str(t.transactional_id),
                        "coordinator": node,
                        "state": t.transaction_state,
                        "error": int(t.error_code),
                        "producer_id": int(t.producer_id),
                        "producer_epoch": int(t.producer_epoch),
                        "timeout_ms": int(t.transaction_timeout.total_seconds() * 1000),
                        "start_ms": int(start.timestamp() * 1000) if start is not None else -1,
                        "partitions": [f"{d.topic}-{p}" for d in t.topics for p in d.partitions],
                    })  # fmt: skip
            return sorted(out, key=lambda r: r["transactional_id"])

        try:
            return await self._thread(run)
        except WireError as exc:
            raise ConsoleError(str(exc)) from None

    async def producers(self, topic: str) -> list[dict[str, Any]]:
        """The active producers of each partition of `topic` (DescribeProducers, asked of each
        partition's leader): ids, epochs, last sequence and timestamp, open transaction."""
        wire = self._transport()
        info = await self.topic(topic)
        addresses = {b[0]: (b[1], b[2]) for b in (await self.describe())["brokers"]}
        by_leader: dict[int, list[int]] = {}
        for p in info.partitions:
            by_leader.setdefault(p.leader, []).append(p.partition)

        def run() -> list[dict[str, Any]]:
            out = []
            for leader, partitions in sorted(by_leader.items()):
                if leader not in addresses:
                    continue  # no leader right now: nothing to ask
                host, port = addresses[leader]
                answer = wire.describe_producers(host, port, topic, partitions)
                for t in answer.topics:
                    for p in t.partitions:
                        self._refused(p.error_code, "Read", "topic", topic)
                        for a in p.active_producers:
                            out.append({
                                "partition": int(p.partition_index),
                                "error": int(p.error_code),
                                "producer_id": int(a.producer_id),
                                "producer_epoch": int(a.producer_epoch),
                                "last_sequence": int(a.last_sequence),
                                "last_timestamp": int(a.last_timestamp),
                                "coordinator_epoch": int(a.coordinator_epoch),
                                "txn_start_offset": int(a.current_txn_start_offset),
                            })  # fmt: skip
            return sorted(out, key=lambda r: (r["partition"], r["producer_id"]))

        try:
            return await self._thread(run)
        except WireError as exc:
            raise ConsoleError(str(exc)) from None
