"""LogManager: every topic and partition log under one data directory.

Files:

    <data_dir>/<topic>-<partition>/            one PartitionLog each (see log.py)
    <data_dir>/topics/<topic id hex>.json      topic metadata, written atomically (tmp, fsync,
                                               rename, fsync dir):
        {"version": 1, "name": ..., "topic_id": "<uuid>", "num_partitions": N,
         "configs": {explicit overrides}, "internal": bool}
    <data_dir>/topics/<topic id hex>.deleted   a topic deletion in progress (metadata moved here)
    <data_dir>/<topic id hex>-<p>.deleted/     a partition directory being removed
    <data_dir>/.klamm_cleanshutdown            written (atomically) by `close()`: a JSON list
                                               of the partition directories it closed cleanly;
                                               `load()` opens those as cleanly closed, every
                                               other one as after a crash, and removes the
                                               file, durably, before opening any log

Metadata and deletion files are named by topic id, not name: a 249-character topic name plus
any suffix would pass the 255-byte file name limit.

Damaged metadata (a metadata file that is not valid JSON of the form above):
  * The file is moved to `topics/<topic id hex>.json.damaged-<ms>` (never deleted) and logged at
    ERROR with the topic name if it can still be read out of the damaged bytes.
  * An internal topic (`internal_topics`, given by the broker: `__consumer_offsets`,
    `__transaction_state`) is recognised by name, from the damaged file or from its partition
    directories, and restored with its known partition count and configs (compacted): its log
    is opened as it is, so the coordinators replay their state instead of starting empty.
  * A user topic is not restored (its configs are lost, and guessing them, e.g. a default
    retention.ms for a topic meant to keep records for ever, could delete data): it is not
    served, its partition directories stay where they are and are reported at every start,
    and creating the topic again moves them aside (see below). Restoring the metadata file
    brings it back.
  * A metadata file that cannot be read at all (an OSError such as EIO or EACCES) makes
    `load()` raise KafkaStorageError: the broker refuses to start rather than guess.
A partition that cannot be opened (a directory where a segment should be, an unreadable file)
is left offline and its cause is kept for `open_failure()`; the broker refuses to start when it
is an internal one.

Crash behaviour:
  * create_topic makes the partition directories first and writes the metadata last: a crash
    in between leaves empty orphan directories that the next create of that name replaces.
    A leftover directory that holds records (its topic's metadata was lost or damaged) is
    never deleted: create_topic renames it to `<topic>-<p>.stray-<ms>` and logs where it went,
    so an operator can restore it.
  * delete_topic moves the metadata aside first (the topic is gone from then on), renames the
    partition directories to `.deleted`, removes them, and finally the moved metadata; `load()`
    finishes any deletion it finds half done.
  * create_partitions writes the new partition count after creating the new directories: a
    crash in between leaves empty directories that the next growth or create replaces.
  * The clean-shutdown marker is one file for the data directory, as Kafka's
    `.kafka_cleanshutdown` is, rather than a marker per log: a marker per log costs a directory
    fsync per partition at every stop and start (2.5 s per 10,000 partitions here). Without it
    (a crash), or unreadable, every log is recovered as after a crash. It names the logs closed
    cleanly, not the others, so a log this manager never opened (offline, orphaned, or every
    log when `load()` failed) is never taken for clean.

Concurrency: topic-level operations and lookups are serialised by one lock, so they may be called
from the event loop and admin worker threads alike. Creating a topic is split so that the lock is
never held over its file work: `prepare_topic` (a worker thread) reserves the name under the lock,
then makes the files without it; `publish_topic` (the event loop) makes the topic visible. The
returned PartitionLogs have their own contract (log.py). A log obtained before `delete_topic`
raises LogClosed afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klamm.storage.config import LogConfig, validate_topic_configs
from klamm.storage.dirlock import DataDirLock
from klamm.storage.durable_files import fsync_dir, write_atomically
from klamm.storage.errors import (
    InvalidPartitions,
    InvalidTopicName,
    KafkaStorageError,
    LogClosed,
    PolicyViolation,
    StorageError,
    TopicExists,
    UnknownTopic,
)
from klamm.storage.handles import SegmentFiles
from klamm.storage.log import PartitionLog
from klamm.storage.recovery import DAMAGED_DIR

# The data directory's clean-shutdown marker (see the module docstring); Kafka's is
# `.kafka_cleanshutdown`, and each log's own (log.py, for logs used without a manager) has the
# same name inside the partition directory.
CLEAN_SHUTDOWN_FILE = ".klamm_cleanshutdown"

__all__ = [
    "DeletedTopic",
    "InternalTopic",
    "LogManager",
    "PreparedPartitions",
    "PreparedTopic",
    "TopicInfo",
    "validate_topic_name",
]

log = logging.getLogger("klamm.storage")

TOPICS_DIR = "topics"
METADATA_VERSION = 1
DELETED_SUFFIX = ".deleted"
STRAY_SUFFIX = ".stray-"
DAMAGED_METADATA_SUFFIX = ".damaged-"
_PARTITION_DIR = re.compile(r".+-\d+")
_META_FILE = re.compile(r"^([0-9a-f]{32})\.json$")
# The name field as TopicInfo.to_json writes it, to name the topic of a damaged file.
_NAME_FIELD = re.compile(rb'"name"\s*:\s*"([a-zA-Z0-9._-]{1,249})"')

# Kafka's Topic.java: 249 = 255 (common file-name limit) minus room for "-<partition>" and the
# ".<uuid>-delete" suffix Kafka appends while deleting.
MAX_TOPIC_NAME_LENGTH = 249
_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
# Partitions per topic: far above any single-node use, low enough that a typo cannot make the
# broker create millions of directories.
MAX_PARTITIONS = 10_000
# How long a topic change waits for another change of the same topic to be published: that
# takes one event-loop step; the bound only keeps a stopped loop from hanging the admin thread.
_CHANGE_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    num_partitions: int
    configs: dict[str, str] = field(default_factory=dict)  # explicit overrides only
    internal: bool = False

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "version": METADATA_VERSION,
                "name": self.name,
                "topic_id": str(self.topic_id),
                "num_partitions": self.num_partitions,
                "configs": self.configs,
                "internal": self.internal,
            },
            indent=1,
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TopicInfo:
        raw: Any = json.loads(data)
        if not isinstance(raw, dict) or raw.get("version") != METADATA_VERSION:
            raise ValueError("not a version 1 topic metadata file")
        configs = raw.get("configs", {})
        if not isinstance(configs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in configs.items()
        ):
            raise ValueError("configs must map strings to strings")
        num = raw["num_partitions"]
        if not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= MAX_PARTITIONS:
            # Above the limit no create could have written: a damaged file, which would
            # otherwise have load() create that many partition directories.
            raise ValueError(f"bad num_partitions {num!r}")
        return cls(
            name=str(raw["name"]),
            topic_id=uuid.UUID(str(raw["topic_id"])),
            num_partitions=num,
            configs=dict(configs),
            internal=bool(raw.get("internal", False)),
        )


@dataclass(frozen=True, slots=True)
class InternalTopic:
    """What an internal topic is made with: enough to restore its metadata if it is damaged."""

    num_partitions: int
    configs: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class DeletedTopic:
    """A deleted topic's files, renamed aside by `LogManager.forget_topic`, that
    `LogManager.purge_deleted` removes."""

    marker: Path
    directories: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class PreparedTopic:
    """A topic whose files exist (`LogManager.prepare_topic`) but that nobody sees yet."""

    info: TopicInfo
    logs: tuple[PartitionLog, ...]


@dataclass(frozen=True, slots=True)
class PreparedPartitions:
    """New partitions of a topic whose logs exist (`LogManager.prepare_partitions`) but that
    nobody sees yet."""

    name: str
    topic_id: uuid.UUID
    total: int
    logs: dict[int, PartitionLog]


def validate_topic_name(name: str) -> None:
    """Kafka's rules (Topic.validate): 1-249 chars of [a-zA-Z0-9._-], not "." or ".."."""
    if not name:
        raise InvalidTopicName("topic name is empty")
    if name in (".", ".."):
        raise InvalidTopicName(f"topic name cannot be {name!r}")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise InvalidTopicName(
            f"topic name is {len(name)} characters; the limit is {MAX_TOPIC_NAME_LENGTH}"
        )
    if not _LEGAL_TOPIC.match(name):
        raise InvalidTopicName(
            f"topic name {name!r} has characters other than ASCII letters, digits, '.', '_', '-'"
        )


class LogManager:
    """Topics, their metadata and their partition logs under `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        now_ms: Callable[[], int],
        default_configs: dict[str, str] | None = None,
        internal_topics: Mapping[str, InternalTopic] | None = None,
        segment_files: SegmentFiles | None = None,
        *,
        max_partitions: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        # Every partition's segment files are opened through this one bounded cache.
        self.segment_files = segment_files or SegmentFiles()
        self._now_ms = now_ms
        self._defaults = validate_topic_configs(default_configs or {})
        self._internal = dict(internal_topics or {})
        self._topics: dict[str, TopicInfo] = {}
        self._logs: dict[tuple[str, int], PartitionLog] = {}
        self._failures: dict[tuple[str, int], str] = {}  # partitions that did not open: why
        self._lock = threading.RLock()
        self._dir_lock = DataDirLock(data_dir)
        # Kafka's KIP-578 max.broker.partitions: None means no limit.
        self._max_partitions = max_partitions
        # Topics between prepare_topic and publish_topic: name -> partition count (reserved
        # names and partitions), and their open logs once prepared.
        self._creating: dict[str, int] = {}
        self._prepared: dict[str, PreparedTopic] = {}
        # Topics between prepare_partitions and publish_partitions: name -> partitions added
        # (reserved), and their new logs once prepared; `_changed` is notified at each publish.
        self._growing: dict[str, int] = {}
        self._prepared_growth: dict[str, PreparedPartitions] = {}
        self._changed = threading.Condition(self._lock)
        self._loaded = False  # load() completed and close() has not run: the marker may be written

    @property
    def _meta_dir(self) -> Path:
        return self.data_dir / TOPICS_DIR

    def _partition_dir(self, name: str, partition: int) -> Path:
        return self.data_dir / f"{name}-{partition}"

    def _meta_path(self, info: TopicInfo) -> Path:
        return self._meta_dir / f"{info.topic_id.hex}.json"

    def effective_config(self, overrides: Mapping[str, str]) -> LogConfig:
        """Table defaults < broker defaults < topic overrides."""
        return LogConfig.from_configs({**self._defaults, **overrides})

    @property
    def default_configs(self) -> dict[str, str]:
        return dict(self._defaults)

    # --- load ------------------------------------------------------------------------------

    def load(self) -> None:
        """Recover every topic on disk. Damaged metadata is set aside (internal topics are
        restored, see the module docstring) and partitions that do not open stay offline,
        both logged; half-done deletions are finished first. Raises KafkaStorageError when a
        metadata file cannot be read at all."""
        with self._lock:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._dir_lock.acquire()  # before anything is read or written: see dirlock.py
            self._meta_dir.mkdir(parents=True, exist_ok=True)
            found: list[TopicInfo] = []
            damaged: dict[str, uuid.UUID | None] = {}  # topic names read out of damaged files
            for path in sorted(self._meta_dir.glob("*.json")):
                info = self._read_metadata(path, damaged)
                if info is not None:
                    self._topics[info.name] = info
                    found.append(info)
            self._finish_deletions()
            clean_logs = self._take_clean_shutdown_marker()
            for name, spec in self._internal.items():
                if name not in self._topics and (
                    name in damaged or self._partition_dir(name, 0).exists()
                ):
                    found.append(self._restore_internal(name, spec, damaged.get(name)))
            for info in found:
                config = self.effective_config(info.configs)
                for partition in range(info.num_partitions):
                    clean = f"{info.name}-{partition}" in clean_logs
                    self._open_partition(info.name, partition, config, clean)
            self._report_orphans()
            self._loaded = True

    def _read_metadata(self, path: Path, damaged: dict[str, uuid.UUID | None]) -> TopicInfo | None:
        """One metadata file's topic; None when it is damaged (then set aside, and its topic
        name, if readable, recorded in `damaged`) or unusable."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise KafkaStorageError(
                f"cannot read topic metadata {path}: {exc.strerror or exc}"
            ) from exc
        try:
            info = TopicInfo.from_json(raw)
            if path.name != f"{info.topic_id.hex}.json":
                raise ValueError(f"file name does not match topic id {info.topic_id}")
            validate_topic_name(info.name)
        except (ValueError, KeyError, TypeError, RecursionError, StorageError) as exc:
            self._set_aside_metadata(path, raw, exc, damaged)
            return None
        if info.name in self._topics:
            first = self._meta_path(self._topics[info.name])
            log.error("skipping topic metadata %s: a second metadata file for topic %r (the "
                      "first is %s)", path, info.name, first)  # fmt: skip
            return None
        try:
            self.effective_config(info.configs)
        except StorageError as exc:
            # The file is intact; its configs are invalid under today's rules. Keep it as it is.
            log.error("topic %s is offline: its stored configs are invalid (%s); fix them in %s",
                      info.name, exc, path)  # fmt: skip
            return None
        if info.name in self._internal and not info.internal:
            info = dataclasses.replace(info, internal=True)
        return info

    def _set_aside_metadata(
        self, path: Path, raw: bytes, cause: Exception, damaged: dict[str, uuid.UUID | None]
    ) -> None:
        match = _NAME_FIELD.search(raw)
        name = match.group(1).decode() if match else None
        id_match = _META_FILE.match(path.name)
        topic_id = uuid.UUID(id_match.group(1)) if id_match else None
        aside = path.with_name(f"{path.name}{DAMAGED_METADATA_SUFFIX}{self._now_ms()}")
        path.rename(aside)
        fsync_dir(self._meta_dir)
        if name is not None and name not in damaged:
            damaged[name] = topic_id
        topic = f"topic {name!r}" if name is not None else "an unknown topic"
        if name in self._internal:
            what = "it is an internal topic: its metadata is restored and its log kept"
        else:
            dirs = sorted(self.data_dir.glob(f"{name}-*")) if name is not None else []
            kept = ", ".join(str(d) for d in dirs if _PARTITION_DIR.fullmatch(d.name)) or "none"
            what = (f"the topic is not served; its partition directories are kept as they "
                    f"are ({kept}); restore the file to serve it again")  # fmt: skip
        log.error("topic metadata %s is damaged (%s): moved to %s; it was %s, and %s", path,
                  cause, aside, topic, what)  # fmt: skip

    def _restore_internal(
        self, name: str, spec: InternalTopic, topic_id: uuid.UUID | None
    ) -> TopicInfo:
        """Write fresh metadata for internal topic `name` whose own was damaged or lost, with
        its known partition count and configs; its partition directories are used as they
        are. Keeps the damaged file's topic id when it named this topic."""
        count = spec.num_partitions
        while self._partition_dir(name, count).exists():
            count += 1  # never hide a partition directory that is there
        info = TopicInfo(name, topic_id or uuid.uuid4(), count, dict(spec.configs), True)
        try:
            write_atomically(self._meta_path(info), info.to_json())
        except OSError as exc:
            raise KafkaStorageError(
                f"cannot restore the metadata of internal topic {name}: {exc.strerror or exc}"
            ) from exc
        self._topics[name] = info
        log.error(
            "internal topic %s had no usable metadata; restored it (%d partitions, %s) and kept "
            "its log", name, count, dict(spec.configs),
        )  # fmt: skip
        return info

    def _report_orphans(self) -> None:
        """Partition directories with records that no topic claims: say so at startup, before
        anyone creates that topic again (which moves them aside, see `_clear_leftover`)."""
        claimed = {
            self._partition_dir(info.name, partition)
            for info in self._topics.values()
            for partition in range(info.num_partitions)
        }
        for path in sorted(self.data_dir.iterdir()):
            if (
                _PARTITION_DIR.fullmatch(path.name)
                and path not in claimed
                and path.is_dir()
                and _holds_records(path)
            ):
                log.error(
                    "partition directory %s holds records but belongs to no topic (its "
                    "metadata file is missing or unreadable); it is kept as it is",
                    path,
                )

    def _take_clean_shutdown_marker(self) -> frozenset[str]:
        """The partition directories the last `close()` closed cleanly (none after a crash).
        The marker is removed, durably, before any log is opened: a crash from then on must
        recover every log."""
        marker = self.data_dir / CLEAN_SHUTDOWN_FILE
        try:
            data = marker.read_bytes()
        except FileNotFoundError:
            return frozenset()
        except OSError as exc:
            log.warning("cannot read %s (%s): recovering every log", marker, exc)
            data = b""
        marker.unlink()
        fsync_dir(self.data_dir)
        try:
            names = json.loads(data)
        except (ValueError, RecursionError):
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            log.warning("%s is not a list of directories: recovering every log", marker)
            return frozenset()
        return frozenset(names)

    def _open_partition(
        self, name: str, partition: int, config: LogConfig, clean_shutdown: bool = False
    ) -> None:
        try:
            self._logs[(name, partition)] = PartitionLog.open(
                self._partition_dir(name, partition), config, self._now_ms, self.segment_files,
                clean_shutdown=clean_shutdown,
            )  # fmt: skip
        except StorageError as exc:
            self._failures[(name, partition)] = str(exc)
            if name not in self._internal:  # the broker refuses to start, saying why
                log.error("partition %s-%d is offline: %s", name, partition, exc)

    def open_failure(self, name: str, partition: int) -> str | None:
        """Why that partition's log did not open at load (None if it did, or was not tried)."""
        with self._lock:
            return self._failures.get((name, partition))

    def _finish_deletions(self) -> None:
        for path in self.data_dir.iterdir():
            if path.name.endswith(DELETED_SUFFIX) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
        for marker in self._meta_dir.glob(f"*{DELETED_SUFFIX}"):
            try:
                info = TopicInfo.from_json(marker.read_bytes())
            except (OSError, ValueError, KeyError) as exc:
                log.error("cannot read deletion marker %s: %s", marker, exc)
                continue
            if info.name not in self._topics:
                for partition in range(info.num_partitions):
                    shutil.rmtree(self._partition_dir(info.name, partition), ignore_errors=True)
            marker.unlink(missing_ok=True)
            log.info("finished deleting topic %s", info.name)

    # --- queries ---------------------------------------------------------------------------

    def topics(self) -> dict[str, TopicInfo]:
        with self._lock:
            return dict(self._topics)

    def topic(self, name: str) -> TopicInfo | None:
        with self._lock:
            return self._topics.get(name)

    def log(self, name: str, partition: int) -> PartitionLog | None:
        with self._lock:
            return self._logs.get((name, partition))

    def logs(self) -> Iterator[tuple[str, int, PartitionLog]]:
        with self._lock:
            items = sorted(self._logs.items())
        for (name, partition), plog in items:
            yield name, partition, plog

    # --- topic operations ------------------------------------------------------------------

    def validate_create(
        self,
        name: str,
        num_partitions: int,
        configs: Mapping[str, str] | None = None,
        *,
        internal: bool = False,
    ) -> dict[str, str]:
        """Every check create_topic makes, without side effects (CreateTopics validate_only).
        Returns the normalised overrides."""
        validate_topic_name(name)
        with self._lock:
            if name in self._topics:
                raise TopicExists(f"topic {name!r} already exists")
            if name in self._creating:
                raise TopicExists(f"topic {name!r} is being created")
            collision = name.replace(".", "_")
            for other in (*self._topics, *self._creating):
                if other.replace(".", "_") == collision:
                    raise InvalidTopicName(
                        f"topic {name!r} collides with existing topic {other!r} "
                        "('.' and '_' are interchangeable in metric names)"
                    )
            if not 1 <= num_partitions <= MAX_PARTITIONS:
                raise InvalidPartitions(
                    f"number of partitions must be between 1 and {MAX_PARTITIONS}, "
                    f"not {num_partitions}"
                )
            after = self._partition_count() + num_partitions
            limit = self._max_partitions
            # Internal topics are never refused: the coordinators cannot work without them.
            if not internal and limit is not None and after > limit:
                raise PolicyViolation(
                    f"creating {num_partitions} partitions would make {after} on this broker; "
                    f"max.broker.partitions is {limit}"
                )
        overrides = validate_topic_configs(configs or {})
        self.effective_config(overrides)
        return overrides

    def _partition_count(self) -> int:
        """Partitions hosted or being created (caller holds the lock)."""
        hosted = sum(info.num_partitions for info in self._topics.values())
        return hosted + sum(self._creating.values()) + sum(self._growing.values())

    def create_topic(
        self,
        name: str,
        num_partitions: int,
        configs: Mapping[str, str] | None = None,
        topic_id: uuid.UUID | None = None,
        *,
        internal: bool = False,
    ) -> TopicInfo:
        """`prepare_topic` then `publish_topic`, in one call."""
        prepared = self.prepare_topic(name, num_partitions, configs, topic_id, internal=internal)
        return self.publish_topic(prepared)

    def prepare_topic(
        self,
        name: str,
        num_partitions: int,
        configs: Mapping[str, str] | None = None,
        topic_id: uuid.UUID | None = None,
        *,
        internal: bool = False,
    ) -> PreparedTopic:
        """The slow half of a create (directories, logs, metadata file: about 0.7 ms a
        partition here), meant for a worker thread. The name is reserved first, under the lock,
        so a concurrent create of the same (or a colliding) name gets TopicExists; the lock is
        not held while the files are made, so lookups from the event loop never wait for it.
        The topic is invisible until `publish_topic`; once this returns, its metadata is on
        disk (a crash from here on finds the topic at the next start)."""
        with self._lock:
            self._wait_unchanging(name)  # a growth of a deleted namesake finishes first
            overrides = self.validate_create(name, num_partitions, configs, internal=internal)
            self._creating[name] = num_partitions
        try:
            config = self.effective_config(overrides)
            info = TopicInfo(name, topic_id or uuid.uuid4(), num_partitions, overrides, internal)
            self._meta_dir.mkdir(parents=True, exist_ok=True)
            for partition in range(num_partitions):
                self._clear_leftover(self._partition_dir(name, partition))
            opened: list[PartitionLog] = []
            try:
                for partition in range(num_partitions):
                    directory = self._partition_dir(name, partition)
                    opened.append(
                        PartitionLog.open(directory, config, self._now_ms, self.segment_files)
                    )
                write_atomically(self._meta_path(info), info.to_json())
            except (OSError, StorageError) as exc:
                for plog in opened:
                    plog.delete()
                if isinstance(exc, StorageError):
                    raise
                raise StorageError(f"cannot create topic {name!r}: {exc}") from exc
        except BaseException:
            with self._lock:
                del self._creating[name]
            raise
        prepared = PreparedTopic(info, tuple(opened))
        with self._lock:
            self._prepared[name] = prepared
        return prepared

    def publish_topic(self, prepared: PreparedTopic) -> TopicInfo:
        """Make a prepared topic visible: quick (no I/O), so the event loop may call it and
        attach its own per-partition state in the same step."""
        info = prepared.info
        with self._lock:
            if self._prepared.pop(info.name, None) is not prepared:
                raise LogClosed(f"topic {info.name!r} was not prepared here or was closed")
            del self._creating[info.name]
            for partition, plog in enumerate(prepared.logs):
                self._logs[(info.name, partition)] = plog
            self._topics[info.name] = info
        return info

    def _clear_leftover(self, directory: Path) -> None:
        """Make room for a new partition directory. An empty leftover (a create interrupted
        before its metadata was written) is removed; one holding records belongs to a topic
        whose metadata was lost, and is moved aside instead: creating a topic never deletes data.
        """
        if not directory.exists():
            return
        if not _holds_records(directory):
            log.warning("removing empty leftover partition directory %s", directory)
            shutil.rmtree(directory)
            return
        aside = directory.with_name(f"{directory.name}{STRAY_SUFFIX}{self._now_ms()}")
        directory.rename(aside)
        fsync_dir(self.data_dir)
        log.error(
            "partition directory %s holds records but no topic metadata names it (lost or "
            "damaged metadata file?); moved it to %s, not deleted",
            directory,
            aside,
        )

    def delete_topic(self, name: str) -> None:
        """Delete `name` and its files: `forget_topic` then `purge_deleted`, in one call."""
        self.purge_deleted(self.forget_topic(name))

    def forget_topic(self, name: str) -> DeletedTopic:
        """The quick half of deleting a topic: it is gone for readers and for `load()` (its
        metadata and partition directories are renamed aside, logs forgotten before their
        directories move), so the name can be created again at once. The files are removed by
        `purge_deleted`, meant for a worker thread: removing thousands of partitions' files
        takes seconds. A crash in between leaves `*-deleted` paths that `load()` removes."""
        with self._lock:
            info = self._require(name)
            marker = self._meta_dir / f"{info.topic_id.hex}{DELETED_SUFFIX}"
            # Once the metadata is moved aside the topic no longer exists for load().
            self._meta_path(info).rename(marker)
            fsync_dir(self._meta_dir)
            del self._topics[name]
            for partition in range(info.num_partitions):
                self._failures.pop((name, partition), None)
            doomed: list[Path] = []
            for partition in range(info.num_partitions):
                plog = self._logs.pop((name, partition), None)
                if plog is not None:
                    plog.discard()
                src = self._partition_dir(name, partition)
                if src.exists():
                    dst = self.data_dir / f"{info.topic_id.hex}-{partition}{DELETED_SUFFIX}"
                    src.rename(dst)
                    doomed.append(dst)
            return DeletedTopic(marker, tuple(doomed))

    @staticmethod
    def purge_deleted(deleted: DeletedTopic) -> None:
        """Remove what `forget_topic` moved aside; the marker last, so a crash half-way
        through is finished by the next `load()`."""
        for path in deleted.directories:
            shutil.rmtree(path, ignore_errors=True)
        deleted.marker.unlink(missing_ok=True)

    def create_partitions(self, name: str, total: int) -> TopicInfo:
        """Grow `name` to `total` partitions (Kafka never shrinks a topic):
        `prepare_partitions` then `publish_partitions`, in one call."""
        return self.publish_partitions(self.prepare_partitions(name, total))

    def prepare_partitions(self, name: str, total: int) -> PreparedPartitions:
        """The slow half of growing a topic (the new partitions' directories and logs), meant
        for a worker thread, without the lock held. Nothing is visible, and the metadata is not
        rewritten, until `publish_partitions`: a crash in between leaves empty directories,
        which the next growth or create of that name replaces. Waits while another change of
        the same topic is between its prepare and publish."""
        with self._lock:
            self._wait_unchanging(name)
            info = self._require(name)
            if total <= info.num_partitions:
                raise InvalidPartitions(
                    f"topic {name!r} has {info.num_partitions} partitions; "
                    f"the new count {total} must be larger"
                )
            if total > MAX_PARTITIONS:
                raise InvalidPartitions(f"at most {MAX_PARTITIONS} partitions per topic")
            added = total - info.num_partitions
            after = self._partition_count() + added
            if self._max_partitions is not None and after > self._max_partitions:
                raise PolicyViolation(
                    f"adding {added} partitions would make {after} on this broker; "
                    f"max.broker.partitions is {self._max_partitions}"
                )
            self._growing[name] = added
        opened: dict[int, PartitionLog] = {}
        try:
            config = self.effective_config(info.configs)
            for partition in range(info.num_partitions, total):
                directory = self._partition_dir(name, partition)
                self._clear_leftover(directory)
                opened[partition] = PartitionLog.open(
                    directory, config, self._now_ms, self.segment_files
                )
        except BaseException as exc:
            for plog in opened.values():
                plog.delete()
            with self._lock:
                del self._growing[name]
                self._changed.notify_all()
            if isinstance(exc, OSError):
                raise StorageError(f"cannot add partitions to {name!r}: {exc}") from exc
            raise
        prepared = PreparedPartitions(name, info.topic_id, total, opened)
        with self._lock:
            self._prepared_growth[name] = prepared
        return prepared

    def publish_partitions(self, prepared: PreparedPartitions) -> TopicInfo:
        """Write the new partition count and make the new partitions visible: one small
        metadata write, so the event loop may call it. A topic deleted (or deleted and created
        again) since the prepare gets UnknownTopic, and the prepared directories are removed."""
        name = prepared.name
        with self._lock:
            if self._prepared_growth.pop(name, None) is not prepared:
                raise LogClosed(f"partitions of {name!r} were not prepared here or were closed")
            del self._growing[name]
            self._changed.notify_all()
            current = self._topics.get(name)
            if current is None or current.topic_id != prepared.topic_id:
                for plog in prepared.logs.values():
                    plog.delete()
                raise UnknownTopic(f"topic {name!r} was deleted while partitions were added")
            new = TopicInfo(name, current.topic_id, prepared.total, dict(current.configs),
                            current.internal)  # fmt: skip
            try:
                write_atomically(self._meta_path(new), new.to_json())
            except OSError as exc:
                for plog in prepared.logs.values():
                    plog.delete()
                raise StorageError(f"cannot add partitions to {name!r}: {exc}") from exc
            config = self.effective_config(current.configs)  # altered since the prepare?
            for partition, plog in prepared.logs.items():
                plog.update_config(config)
                self._logs[(name, partition)] = plog
            self._topics[name] = new
            return new

    def _wait_unchanging(self, name: str) -> None:
        """Wait (caller holds the lock, from a worker thread) until no growth of `name` is
        between its prepare and publish. The publish follows within one event-loop step, so
        the wait is short; the bound only keeps a stopped loop from hanging the thread."""
        deadline = time.monotonic() + _CHANGE_WAIT_S
        while name in self._growing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StorageError(f"topic {name!r} is still being changed; try again")
            self._changed.wait(remaining)

    def alter_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo:
        """Replace the topic's override set (AlterConfigs semantics) and apply it."""
        with self._lock:
            info = self._require(name)
            overrides = validate_topic_configs(configs)
            config = self.effective_config(overrides)
            new = TopicInfo(info.name, info.topic_id, info.num_partitions, overrides, info.internal)
            try:
                write_atomically(self._meta_path(new), new.to_json())
            except OSError as exc:
                raise StorageError(f"cannot store configs of {name!r}: {exc}") from exc
            self._topics[name] = new
            for partition in range(info.num_partitions):
                plog = self._logs.get((name, partition))
                if plog is not None:
                    plog.update_config(config)
            return new

    def _require(self, name: str) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            raise UnknownTopic(f"unknown topic {name!r}")
        return info

    # --- maintenance -----------------------------------------------------------------------

    def flush_all(self) -> None:
        for _, _, plog in self.logs():
            plog.flush()

    def checkpoint_recovery_points(self) -> int:
        """Each log's `checkpoint_recovery_point` (log.py): after a crash, recovery CRC-checks
        only what was written since. Returns how many logs wrote one (two fsyncs each)."""
        return sum(plog.checkpoint_recovery_point() for _, _, plog in self.logs())

    def enforce_retention(self, durable_end: Callable[[str, int], int] | None = None) -> int:
        """Apply retention to every log. `durable_end(topic, partition)` is the partition's high
        watermark: records below it may go with the active segment (see PartitionLog)."""
        now = self._now_ms()
        return sum(
            plog.enforce_retention(now, durable_end(name, p) if durable_end else None)
            for name, p, plog in self.logs()
        )

    def close(self) -> None:
        """Close every log, then write the clean-shutdown marker (see the module docstring)."""
        with self._lock:
            logs = list(self._logs.values())
            self._logs.clear()
            # Prepared but never published (the broker stopped in between): their metadata is
            # on disk, so they are complete topics at the next start.
            for prepared in self._prepared.values():
                logs.extend(prepared.logs)
            self._prepared.clear()
            # Grown but never published: not in the metadata, so empty leftovers at next start.
            for growth in self._prepared_growth.values():
                logs.extend(growth.logs.values())
            self._prepared_growth.clear()
            clean = [p.directory.name for p in logs if p.close(mark_clean=False)]
            if self._loaded:  # never without the directory lock, nor for logs not loaded
                self._loaded = False
                try:
                    write_atomically(
                        self.data_dir / CLEAN_SHUTDOWN_FILE, json.dumps(sorted(clean)).encode()
                    )
                except OSError as exc:  # the next start recovers every log: slower, no loss
                    log.warning("cannot write the clean-shutdown marker: %s", exc)
            self._topics.clear()
            self._dir_lock.release()


def _holds_records(directory: Path) -> bool:
    """A partition directory with a non-empty segment file, or with anything recovery set
    aside (log.py's damaged/): either is data an operator may still need."""
    if any(f.stat().st_size for f in directory.glob("*.log")):
        return True
    return any(directory.glob(f"{DAMAGED_DIR}/*"))
