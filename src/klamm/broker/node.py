"""The broker node: its topics and partitions, its coordinators, and its listener.

`Broker` is the one object handlers reach through `ctx.broker`. It owns the storage
(`LogManager`), the serving state of each partition (`Partition`), the group commit, and the
coordinators (`groups`, `producers`, `transactions`), which it builds in its constructor, each
given the narrow view of the broker it needs (interfaces.py) and its other collaborators;
`start()` recovers everything from the data directory and opens the listener, `stop()` closes
it and flushes everything to disk.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from klamm.broker.auth import CredentialStore
from klamm.broker.auth.tls import server_context
from klamm.broker.authorizer.interface import AllowEverything, Authorizer
from klamm.broker.authorizer.standard import StandardAuthorizer
from klamm.broker.authorizer.store import ACLS_TOPIC, ACLS_TOPIC_CONFIG, AclStore
from klamm.broker.config import BrokerConfig
from klamm.broker.connection import KafkaConnection
from klamm.broker.connections import Connections
from klamm.broker.durability import GroupCommit
from klamm.broker.groups import GroupCoordinator
from klamm.broker.groups.coordinator import OFFSETS_TOPIC, OFFSETS_TOPIC_CONFIG
from klamm.broker.interfaces import Service
from klamm.broker.listener import Listener, raise_fd_limit
from klamm.broker.metrics import MetricsServer
from klamm.broker.partition import Partition
from klamm.broker.router import Handler, advertised_versions, load_handlers
from klamm.broker.schema_validation import SchemaIdIndex
from klamm.broker.transactions import (
    ProducerIdAllocator,
    ProducerStateService,
    TransactionCoordinator,
)
from klamm.broker.transactions.producers import AppendCheck
from klamm.broker.transactions.state import TXN_TOPIC
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.protocol.messages import preload
from klamm.protocol.record_batch import BatchHeader
from klamm.storage import (
    InternalTopic,
    LogCleaner,
    LogManager,
    SegmentFiles,
    StorageError,
    TopicInfo,
)

log = logging.getLogger("klamm.broker")

# The coordinators' logs, as they create them: storage restores one of these (instead of
# starting it empty) if its metadata file is damaged or lost, and the broker does not start
# without them.
INTERNAL_TOPICS = {
    OFFSETS_TOPIC: InternalTopic(1, OFFSETS_TOPIC_CONFIG),
    TXN_TOPIC: InternalTopic(1, {"cleanup.policy": "compact"}),
    ACLS_TOPIC: InternalTopic(1, ACLS_TOPIC_CONFIG),  # made once an authorizer is configured
}


# Segment files may hold at most 1/4 of the process's descriptors (the default cache size
# of 256 is a quarter of the common 1024 limit); the rest are for connections and the like.
FD_SHARE_FOR_SEGMENTS = 4
# Segment files kept open when the process has no fd limit at all (RLIM_INFINITY).
UNLIMITED_FDS_SEGMENT_FILES = 65536

_Prepared = TypeVar("_Prepared")


class StartupError(Exception):
    """The broker cannot start: an unusable data directory or listen address."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Broker:
    def __init__(self, config: BrokerConfig, now_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        self.now_ms = now_ms
        self.routes: dict[int, Handler] = load_handlers()
        self.advertised = advertised_versions(self.routes)
        self.connections: Connections[KafkaConnection] = Connections(
            config.max_connections,
            config.max_connections_per_ip,
            config.max_connections_per_ip_overrides,
        )
        # Requests received per API key (for metrics); counted before dispatch.
        self.request_counts: collections.Counter[int] = collections.Counter()
        self.metrics = MetricsServer(self)
        self.metrics_port: int | None = None
        self.durability = GroupCommit(config.flush_policy)
        self.logs = LogManager(
            Path(config.data_dir), now_ms, dict(config.topic_defaults), INTERNAL_TOPICS,
            SegmentFiles(config.segment_open_files_max or UNLIMITED_FDS_SEGMENT_FILES),
            max_partitions=config.max_broker_partitions,
        )  # fmt: skip
        # Topic creation's and growth's file work (a directory, a segment and an fsync per
        # partition) runs here, one change at a time as in Kafka's controller: never on the
        # event loop, and never more than one thread of it competing with the loop for the GIL.
        self._admin = ThreadPoolExecutor(max_workers=1, thread_name_prefix="klamm-admin")
        self._changes: set[asyncio.Task[TopicInfo]] = set()
        # Deleted topics' files being removed in worker threads; stop() waits for them.
        self._purges: set[asyncio.Future[None]] = set()
        self.cleaner = LogCleaner(self.logs)  # compaction of cleanup.policy=compact logs
        # Broker-side schema validation reads the registry's `_schemas` partition from here.
        self.schema_ids = SchemaIdIndex(self.partition)
        self.cluster_id = ""
        self._partitions: dict[tuple[str, int], Partition] = {}
        self._listener: Listener | None = None
        self._background: list[asyncio.Task[Any]] = []
        # SASL_* listeners: users' salted SCRAM keys. The passwords are dropped from the
        # config kept here, so the running broker holds none.
        self.credentials: CredentialStore | None = None
        # Who may do what (klamm.broker.authorizer): everything, unless authorizer.class.name
        # names one; then the ACL store (None without) owns the ACLs the authorizer decides by.
        self.authorizer: Authorizer = AllowEverything()
        self.acls: AclStore | None = None
        if config.authorizer_enabled:
            standard = StandardAuthorizer(config.super_users, config.allow_everyone_if_no_acl_found)
            self.authorizer = standard
            self.acls = AclStore(self, standard)
        elif config.super_users:
            log.warning("super.users is set but no authorizer is configured: it has no effect")
        if config.sasl_enabled:
            self.credentials = CredentialStore(config.sasl_users, config.scram_iterations)
            if not self.credentials:
                log.warning("SASL is on but no users are configured: every login will fail")
        self.config = config.replace(sasl_users={})
        # The coordinators. The producer id allocator is shared: the transaction coordinator
        # hands ids out, the producer state refuses any it never handed out.
        producer_ids = ProducerIdAllocator()
        self.groups = GroupCoordinator(self)
        self.producers = ProducerStateService(
            self, self.logs, producer_ids, txn_check=self._check_txn_append
        )
        self.transactions = TransactionCoordinator(
            self, producers=self.producers, groups=self.groups, producer_ids=producer_ids
        )
        # Those started, in start order; stop() stops them in reverse.
        self._running: list[Service] = []

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        tls = self._tls_context()  # first: a bad certificate fails the start before recovery
        fd_limit = raise_fd_limit()  # before recovery opens files and connections arrive
        if fd_limit is not None:
            # Most descriptors are for connections: segment files get at most a quarter.
            share = fd_limit // FD_SHARE_FOR_SEGMENTS
            if self.config.segment_open_files_max is None:
                self.logs.segment_files.set_capacity(share)
            else:
                self.logs.segment_files.limit_capacity(share)
        log.debug("at most %d segment files open (fd limit %s)",
                 self.logs.segment_files.capacity, fd_limit or "unlimited")  # fmt: skip
        # Every client's first requests (~30 ms): served even when a storm of connections has
        # taken every descriptor, which the lazy import of their schemas would need.
        preload((ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE))
        data_dir = Path(self.config.data_dir)
        started = time.monotonic()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(self.logs.load)  # takes the data directory's lock first
            self.cluster_id = _load_cluster_id(data_dir)
        except StorageError as exc:  # DataDirInUse, an unreadable metadata file
            await asyncio.to_thread(self.logs.close)
            raise StartupError(str(exc)) from exc
        except OSError as exc:
            await asyncio.to_thread(self.logs.close)
            raise StartupError(f"cannot use data directory {data_dir}: {exc}") from exc
        recovered = len(self.logs.topics())
        for name, info in self.logs.topics().items():
            self._attach(name, info)
        await self._start_coordinators()
        try:
            self._listener = await Listener.bind(
                self.config.host, self.config.port, lambda: KafkaConnection(self), tls,
                self.logs.segment_files.release_idle,
            )  # fmt: skip
        except OSError as exc:
            await self._stop_coordinators()
            await asyncio.to_thread(self.logs.close)
            raise StartupError(
                f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}"
            ) from exc
        if self.config.port == 0:
            self.config = self.config.replace(port=self.bound_port)
        if self.config.metrics_port is not None:
            self.metrics_port = await self.metrics.start(
                self.config.metrics_host, self.config.metrics_port
            )
            log.info("metrics at http://%s:%d/metrics", self.config.metrics_host, self.metrics_port)
        self._background.append(asyncio.create_task(self._log_maintenance_loop()))
        self._background.append(asyncio.create_task(self._recovery_checkpoint_loop()))
        log.info(
            "klamm broker %s listening on %s://%s:%d (advertised %s:%d), %d topics recovered, "
            "started in %.0f ms, fd limit %s", self.cluster_id, self.config.security_protocol,
            self.config.host, self.bound_port, *self.config.advertised, recovered,
            (time.monotonic() - started) * 1000, fd_limit or "unlimited",
        )  # fmt: skip

    async def _start_coordinators(self) -> None:
        """Start the coordinators, or refuse to start the broker with one line saying why when
        an internal log they need did not open (a coordinator without its log would start
        empty and forget every group's offsets or every open transaction).

        The order: the group coordinator, then the producer state (loaded before anything can
        be appended), then the transaction coordinator, whose start-up completes decided
        transactions by writing their markers through the producer state and their offsets'
        outcome through the group coordinator."""
        problem: str | None = None
        for name in INTERNAL_TOPICS:
            info = self.logs.topic(name)
            for index in range(info.num_partitions if info is not None else 0):
                if self.partition(name, index) is None:
                    cause = self.logs.open_failure(name, index) or "its log did not open"
                    problem = f"internal partition {name}-{index} cannot be opened: {cause}"
                    break
            if problem is not None:
                break
        if problem is None:
            # The ACLs first: nothing is authorized before they are loaded.
            acls: tuple[Service, ...] = () if self.acls is None else (self.acls,)
            in_order = (*acls, self.groups, self.producers, self.transactions)
            for service in in_order:
                try:
                    await service.start()
                except StorageError as exc:
                    problem = f"the {service.name} coordinator cannot start: {exc}"
                    break
                self._running.append(service)
        if problem is None:
            return
        await self._stop_coordinators()
        await asyncio.to_thread(self.logs.close)
        raise StartupError(problem)

    async def _stop_coordinators(self) -> None:
        """Stop the coordinators started, in reverse start order."""
        while self._running:
            await self._running.pop().stop()

    def _check_txn_append(self, header: BatchHeader, partition: Partition) -> AppendCheck | None:
        """The producer state's KIP-890 check of a transactional batch, answered by the
        transaction coordinator. The producer state is built first (the coordinator writes its
        markers through it), so it is given this method, which reaches the coordinator."""
        return self.transactions.check_txn_append(header, partition)

    def _tls_context(self) -> ssl.SSLContext | None:
        """SSL / SASL_SSL: asyncio's transport does TLS and the connection sees plaintext."""
        config = self.config
        if not config.tls_enabled:
            return None
        if config.ssl_certfile is None:
            raise ValueError(f"a {config.security_protocol} listener needs ssl.certfile")
        return server_context(config.ssl_certfile, config.ssl_keyfile, config.ssl_cafile,
                              config.ssl_client_auth)  # fmt: skip

    @property
    def bound_port(self) -> int:
        assert self._listener is not None
        return int(self._listener.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        await self.metrics.stop()
        for connection in list(self.connections):
            connection.close()
        for task in self._background:
            task.cancel()
        await self._stop_coordinators()
        await self.durability.wait_idle()
        self.durability.close()
        await asyncio.to_thread(self._admin.shutdown)  # a creation under way finishes first
        await asyncio.gather(*self._purges, return_exceptions=True)
        await asyncio.to_thread(self.logs.close)
        log.info("klamm broker stopped cleanly")

    async def _recovery_checkpoint_loop(self) -> None:
        """Every log.flush.offset.checkpoint.interval.ms: record each log's flushed position,
        so recovery after a crash depends on recent writes, not on the data held."""
        interval = self.config.recovery_checkpoint_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.logs.checkpoint_recovery_points)
            except Exception:
                log.exception("recovery point checkpoint failed")

    async def _log_maintenance_loop(self) -> None:
        """Every log.retention.check.interval.ms: delete what retention allows, then compact
        the cleanup.policy=compact logs, then clamp high watermarks to what is left."""
        interval = self.config.retention_check_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.logs.enforce_retention, self._high_watermark_of)
            except Exception:
                log.exception("retention check failed")
            try:
                # Compaction rewrites only sealed segments (never the log end), in a thread:
                # it reads and writes whole segments.
                await asyncio.to_thread(self.cleaner.clean_all, self.now_ms())
            except Exception:
                log.exception("log compaction failed")
            for partition in self._partitions.values():
                partition.reset_high_watermark()

    def _high_watermark_of(self, topic: str, index: int) -> int:
        """For retention, from its worker thread: records at or past it stay (-1: all stay)."""
        partition = self._partitions.get((topic, index))
        return partition.high_watermark if partition is not None else -1

    # --- topics and partitions ------------------------------------------------------------------

    def _attach(self, name: str, info: TopicInfo) -> None:
        for index in range(info.num_partitions):
            key = (name, index)
            if key not in self._partitions:
                plog = self.logs.log(name, index)
                if plog is None:  # failed to open; storage logged why
                    if name not in INTERNAL_TOPICS:  # those stop the start, saying why
                        log.error("partition %s-%d is offline: its log did not open", name, index)
                    continue
                self._partitions[key] = Partition(
                    name, index, plog, internal=info.internal, transactions=self.producers
                )

    def partition(self, topic: str, index: int) -> Partition | None:
        return self._partitions.get((topic, index))

    def missing_partition_error(self, topic: str, index: int) -> ErrorCode:
        """The error for a request naming a partition `partition()` does not have: the
        partition is offline when its log exists but did not open (KAFKA_STORAGE_ERROR, as
        Kafka answers for a partition on an offline log directory), else it is unknown."""
        if self.logs.open_failure(topic, index) is not None:
            return ErrorCode.kafka_storage_error
        return ErrorCode.unknown_topic_or_partition

    def partitions(self) -> Iterator[Partition]:
        return iter(self._partitions.values())

    def topic(self, name: str) -> TopicInfo | None:
        # One lookup, not a copy of every topic: produce asks for each batch.
        return self.logs.topic(name)

    def create_topic(
        self,
        name: str,
        num_partitions: int | None = None,
        configs: dict[str, str] | None = None,
        *,
        internal: bool = False,
    ) -> TopicInfo:
        """Create a topic (raises the storage layer's errors for bad names, configs, counts)."""
        partitions = self.config.num_partitions if num_partitions is None else num_partitions
        info = self.logs.create_topic(name, partitions, configs, internal=internal)
        self._attach(name, info)
        log.info("created topic %s with %d partitions", name, info.num_partitions)
        return info

    async def create_topic_in_thread(
        self,
        name: str,
        num_partitions: int | None = None,
        configs: dict[str, str] | None = None,
    ) -> TopicInfo:
        """`create_topic` with the file work in the admin thread: the loop keeps serving while
        a large topic is made. The topic appears (storage and partitions together, in one loop
        step) only once complete."""
        partitions = self.config.num_partitions if num_partitions is None else num_partitions
        info = await self._change_in_thread(
            functools.partial(self.logs.prepare_topic, name, partitions, configs),
            self.logs.publish_topic,
        )
        log.info("created topic %s with %d partitions", name, info.num_partitions)
        return info

    async def create_partitions_in_thread(self, name: str, total: int) -> None:
        """`create_partitions` with the new partitions' file work in the admin thread."""
        info = await self._change_in_thread(
            functools.partial(self.logs.prepare_partitions, name, total),
            self.logs.publish_partitions,
        )
        log.info("topic %s now has %d partitions", name, info.num_partitions)

    async def _change_in_thread(
        self, prepare: Callable[[], _Prepared], publish: Callable[[_Prepared], TopicInfo]
    ) -> TopicInfo:
        """Run `prepare` in the admin thread, then publish and attach on the loop in one step.
        A caller cancelled meanwhile (its connection closed) does not stop that, so nothing
        prepared is left unpublished."""
        task = asyncio.ensure_future(self._prepare_then_publish(prepare, publish))
        self._changes.add(task)
        task.add_done_callback(self._change_done)
        return await asyncio.shield(task)

    async def _prepare_then_publish(
        self, prepare: Callable[[], _Prepared], publish: Callable[[_Prepared], TopicInfo]
    ) -> TopicInfo:
        prepared = await asyncio.get_running_loop().run_in_executor(self._admin, prepare)
        info = publish(prepared)
        self._attach(info.name, info)
        return info

    def _change_done(self, task: asyncio.Task[TopicInfo]) -> None:
        self._changes.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the caller may be gone; its own await re-raises it

    def delete_topic(self, name: str) -> None:
        info = self.logs.topics()[name]
        for index in range(info.num_partitions):
            partition = self._partitions.pop((name, index), None)
            if partition is not None:
                partition.wake_waiters()  # parked fetches answer UNKNOWN_TOPIC_OR_PARTITION
        deleted = self.logs.forget_topic(name)
        # Removing the files (seconds for thousands of partitions) runs in a worker thread, not
        # the admin one, so creations do not queue behind it; the name is free again at once.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the event loop (a test's thread): purge inline
            self.logs.purge_deleted(deleted)
        else:
            purge = loop.run_in_executor(None, self.logs.purge_deleted, deleted)
            self._purges.add(purge)
            purge.add_done_callback(self._purges.discard)
        log.info("deleted topic %s", name)

    def create_partitions(self, name: str, total: int) -> None:
        self.logs.create_partitions(name, total)
        self._attach(name, self.logs.topics()[name])


def _load_cluster_id(data_dir: Path) -> str:
    """Kafka keeps the cluster id in meta.properties; so do we, so it survives restarts."""
    meta = data_dir / "meta.properties"
    if meta.exists():
        for line in meta.read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
    cluster_id = _kafka_style_id()
    tmp = meta.with_suffix(".tmp")
    tmp.write_text(f"version=1\ncluster.id={cluster_id}\nnode.id=0\n")
    tmp.replace(meta)
    return cluster_id


def _kafka_style_id() -> str:
    """22-character URL-safe base64 of a random UUID, as Kafka's cluster ids look."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
