"""LogManager: every topic and partition log under one data directory.

Files:

    <data_dir>/<topic>-<partition>/            one PartitionLog each (see log.py)
    <data_dir>/topics/<topic id hex>.json      topic metadata, written atomically (tmp, fsync,
                                               rename, fsync dir):
        {"version": 1, "name": ..., "topic_id": "<uuid>", "num_partitions": N,
         "configs": {explicit overrides}, "internal": bool}
    <data_dir>/topics/<topic id hex>.deleted   a topic deletion in progress (metadata moved here)
    <data_dir>/<topic id hex>-<p>.deleted/     a partition directory being removed

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
  * create_partitions writes the new partition count after creating the new directories.

Concurrency: topic-level operations and lookups are serialised by one lock, so they may be called
from the event loop and admin worker threads alike. The returned PartitionLogs have their own
contract (log.py). A log obtained before `delete_topic` raises LogClosed afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klamm.storage.config import LogConfig, validate_topic_configs
from klamm.storage.dirlock import DataDirLock
from klamm.storage.errors import (
    InvalidPartitions,
    InvalidTopicName,
    KafkaStorageError,
    StorageError,
    TopicExists,
    UnknownTopic,
)
from klamm.storage.handles import SegmentFiles
from klamm.storage.log import PartitionLog, fsync_dir, write_atomically
from klamm.storage.recovery import DAMAGED_DIR

__all__ = ["InternalTopic", "LogManager", "TopicInfo", "validate_topic_name"]

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
            for name, spec in self._internal.items():
                if name not in self._topics and (
                    name in damaged or self._partition_dir(name, 0).exists()
                ):
                    found.append(self._restore_internal(name, spec, damaged.get(name)))
            for info in found:
                config = self.effective_config(info.configs)
                for partition in range(info.num_partitions):
                    self._open_partition(info.name, partition, config)
            self._report_orphans()

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

    def _open_partition(self, name: str, partition: int, config: LogConfig) -> None:
        try:
            self._logs[(name, partition)] = PartitionLog.open(
                self._partition_dir(name, partition), config, self._now_ms, self.segment_files
            )
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
        self, name: str, num_partitions: int, configs: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Every check create_topic makes, without side effects (CreateTopics validate_only).
        Returns the normalised overrides."""
        validate_topic_name(name)
        with self._lock:
            if name in self._topics:
                raise TopicExists(f"topic {name!r} already exists")
            collision = name.replace(".", "_")
            for other in self._topics:
                if other.replace(".", "_") == collision:
                    raise InvalidTopicName(
                        f"topic {name!r} collides with existing topic {other!r} "
                        "('.' and '_' are interchangeable in metric names)"
                    )
        if not 1 <= num_partitions <= MAX_PARTITIONS:
            raise InvalidPartitions(
                f"number of partitions must be between 1 and {MAX_PARTITIONS}, not {num_partitions}"
            )
        overrides = validate_topic_configs(configs or {})
        self.effective_config(overrides)
        return overrides

    def create_topic(
        self,
        name: str,
        num_partitions: int,
        configs: Mapping[str, str] | None = None,
        topic_id: uuid.UUID | None = None,
        *,
        internal: bool = False,
    ) -> TopicInfo:
        with self._lock:
            overrides = self.validate_create(name, num_partitions, configs)
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
            for partition, plog in enumerate(opened):
                self._logs[(name, partition)] = plog
            self._topics[name] = info
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
            for path in doomed:
                shutil.rmtree(path, ignore_errors=True)
            marker.unlink(missing_ok=True)

    def create_partitions(self, name: str, total: int) -> TopicInfo:
        """Grow `name` to `total` partitions (Kafka never shrinks a topic)."""
        with self._lock:
            info = self._require(name)
            if total <= info.num_partitions:
                raise InvalidPartitions(
                    f"topic {name!r} has {info.num_partitions} partitions; "
                    f"the new count {total} must be larger"
                )
            if total > MAX_PARTITIONS:
                raise InvalidPartitions(f"at most {MAX_PARTITIONS} partitions per topic")
            config = self.effective_config(info.configs)
            new = TopicInfo(info.name, info.topic_id, total, dict(info.configs), info.internal)
            opened: dict[int, PartitionLog] = {}
            try:
                for partition in range(info.num_partitions, total):
                    stale = self._partition_dir(name, partition)
                    self._clear_leftover(stale)  # moved aside if it holds records
                    opened[partition] = PartitionLog.open(
                        stale, config, self._now_ms, self.segment_files
                    )
                write_atomically(self._meta_path(new), new.to_json())
            except (OSError, StorageError) as exc:
                for plog in opened.values():
                    plog.delete()
                if isinstance(exc, StorageError):
                    raise
                raise StorageError(f"cannot add partitions to {name!r}: {exc}") from exc
            for partition, plog in opened.items():
                self._logs[(name, partition)] = plog
            self._topics[name] = new
            return new

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

    def enforce_retention(self, durable_end: Callable[[str, int], int] | None = None) -> int:
        """Apply retention to every log. `durable_end(topic, partition)` is the partition's high
        watermark: records below it may go with the active segment (see PartitionLog)."""
        now = self._now_ms()
        return sum(
            plog.enforce_retention(now, durable_end(name, p) if durable_end else None)
            for name, p, plog in self.logs()
        )

    def close(self) -> None:
        with self._lock:
            for plog in self._logs.values():
                plog.close()
            self._logs.clear()
            self._topics.clear()
            self._dir_lock.release()


def _holds_records(directory: Path) -> bool:
    """A partition directory with a non-empty segment file, or with anything recovery set
    aside (log.py's damaged/): either is data an operator may still need."""
    if any(f.stat().st_size for f in directory.glob("*.log")):
        return True
    return any(directory.glob(f"{DAMAGED_DIR}/*"))
