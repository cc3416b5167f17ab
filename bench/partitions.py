"""Many partitions under a small fd limit: creation, metadata, start-up, memory per partition.

    python -m bench.partitions [--partitions 50000] [--fd-limit 1024]

Starts `python -m klamm broker` in a child whose RLIMIT_NOFILE (soft and hard) is --fd-limit,
with max.broker.partitions raised to fit; creates the partitions (topics of at most 10,000,
Kafka's per-request bound) with CreateTopics; produces one batch to every partition (so each has
written a segment); times a Metadata request for every topic; then stops the broker cleanly
(SIGTERM) and times its next start, and kills it (SIGKILL) and times the start after that.
Memory per idle partition: the broker's RSS after the creation minus before, per partition.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.fds import decode, exchange, request
from bench.idle_connections import rss_kib
from rich.console import Console
from rich.table import Table

from klamm.protocol.record_batch import Record, RecordBatch, build_batch

# Kafka's controller refuses more partitions than this in one request; so does klamm.
PER_TOPIC = 10_000


@dataclass
class PartitionsResult:
    partitions: int
    fd_limit: int
    create_s: float
    produce_s: float
    metadata_s: float
    clean_start_s: float
    kill_start_s: float
    rss_before_kib: int
    rss_after_kib: int
    max_fds: int

    @property
    def kib_per_partition(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.partitions


class BrokerProcess:
    """`python -m klamm broker` in a child with a fixed fd limit, on one data dir and port."""

    def __init__(self, data_dir: Path, fd_limit: int, extra_config: dict[str, str]) -> None:
        import socket

        self.data_dir = data_dir
        self.fd_limit = fd_limit
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.config = data_dir.parent / "broker.properties"
        self.config.write_text("".join(f"{k}={v}\n" for k, v in extra_config.items()))
        self.log_path = data_dir.parent / "broker.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300) -> float:
        """Start the broker; seconds until it listens."""

        def limit() -> None:
            if self.fd_limit:
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.fd_limit, self.fd_limit))

        self.log_path.write_bytes(b"")
        started = time.perf_counter()
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "klamm", "broker", "--listen", f"127.0.0.1:{self.port}",
                 "--data-dir", str(self.data_dir), "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=limit,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while "listening on" not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the broker did not start:\n{self.log_tail()}")
            time.sleep(0.01)
        return time.perf_counter() - started

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def _connect(port: int) -> object:
    import socket

    return socket.create_connection(("127.0.0.1", port), timeout=300)


def create_topics(port: int, topics: dict[str, int]) -> None:
    """CreateTopics, one topic per request (each at most PER_TOPIC partitions)."""
    with _connect(port) as sock:  # type: ignore[attr-defined]
        for name, count in topics.items():
            response = request(
                sock, 19, 4, timeout=300_000, validate_only=False,
                topics=[{"name": name, "num_partitions": count, "replication_factor": 1,
                         "assignments": [], "configs": []}],
            )  # fmt: skip
            for topic in response.topics:
                if topic.error_code != 0:
                    raise RuntimeError(f"CreateTopics {name}: error {topic.error_code}")


def metadata(port: int, topics: list[str]) -> tuple[float, int]:
    """Seconds for one Metadata request naming every topic (sent to last byte received), and
    the partitions it listed."""
    with _connect(port) as sock:  # type: ignore[attr-defined]
        request(
            sock,
            3,
            9,
            topics=[],
            allow_auto_topic_creation=False,
            include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False,
        )  # fmt: skip  (connect warm-up)
        started = time.perf_counter()
        frame = exchange(
            sock, 3, 9, topics=[{"name": t} for t in topics], allow_auto_topic_creation=False,
            include_cluster_authorized_operations=False, include_topic_authorized_operations=False,
        )  # fmt: skip
        elapsed = time.perf_counter() - started  # to the last byte: not this client's decoding
        response = decode(3, 9, frame)
    listed = sum(len(t.partitions) for t in response.topics if t.error_code == 0)
    return elapsed, listed


def produce_everywhere(port: int, topics: dict[str, int]) -> None:
    """One small batch, acks=1, to every partition (one Produce request per topic)."""
    batch = bytes(
        build_batch(RecordBatch(records=[Record(0, int(time.time() * 1000), None, b"x")]))
    )
    with _connect(port) as sock:  # type: ignore[attr-defined]
        for name, count in topics.items():
            response = request(
                sock, 0, 8, transactional_id=None, acks=1, timeout=300_000,
                topic_data=[{"name": name, "partition_data": [
                    {"index": p, "records": batch} for p in range(count)]}],
            )  # fmt: skip
            bad = [p.index for r in response.responses for p in r.partition_responses
                   if p.error_code != 0]  # fmt: skip
            if bad:
                raise RuntimeError(f"Produce {name}: {len(bad)} partitions failed")


def topic_layout(partitions: int) -> dict[str, int]:
    topics: dict[str, int] = {}
    left = partitions
    while left > 0:
        topics[f"scale-{len(topics)}"] = min(PER_TOPIC, left)
        left -= PER_TOPIC
    return topics


def run(partitions: int, fd_limit: int, work_dir: Path | None = None) -> PartitionsResult:
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        broker = BrokerProcess(
            data_dir, fd_limit, {"max.broker.partitions": str(max(partitions + 100, 10_000))}
        )
        topics = topic_layout(partitions)
        broker.start()
        try:
            time.sleep(0.5)
            before = rss_kib(broker.pid)
            started = time.perf_counter()
            create_topics(broker.port, topics)
            create_s = time.perf_counter() - started
            started = time.perf_counter()
            produce_everywhere(broker.port, topics)
            produce_s = time.perf_counter() - started
            time.sleep(0.5)
            after = rss_kib(broker.pid)
            max_fds = broker.fds()
            metadata_s, listed = min(metadata(broker.port, list(topics)) for _ in range(3))
            if listed != partitions:
                raise RuntimeError(f"Metadata listed {listed} of {partitions} partitions")
            broker.stop(signal.SIGTERM)
            clean_s = broker.start()
            max_fds = max(max_fds, broker.fds())
            broker.stop(signal.SIGKILL)
            kill_s = broker.start()
            max_fds = max(max_fds, broker.fds())
            _elapsed, listed = metadata(broker.port, list(topics))
            if listed != partitions:
                raise RuntimeError(f"after SIGKILL, Metadata listed {listed} of {partitions}")
        finally:
            broker.stop(signal.SIGKILL)
    return PartitionsResult(
        partitions,
        fd_limit,
        create_s,
        produce_s,
        metadata_s,
        clean_s,
        kill_s,
        before,
        after,
        max_fds,
    )


def table(results: list[PartitionsResult]) -> Table:
    out = Table(title="klamm broker: many partitions under a small fd limit")
    columns = (
        "partitions", "fd limit", "create s", "produce 1 batch each s", "metadata s",
        "start after stop s", "start after SIGKILL s", "KiB per partition", "max fds",
    )  # fmt: skip
    for column in columns:
        out.add_column(column, justify="right")
    for r in results:
        out.add_row(
            str(r.partitions), str(r.fd_limit), f"{r.create_s:.1f}", f"{r.produce_s:.1f}",
            f"{r.metadata_s:.3f}", f"{r.clean_start_s:.2f}", f"{r.kill_start_s:.2f}",
            f"{r.kib_per_partition:.1f}", str(r.max_fds),
        )  # fmt: skip
    return out


def main(argv: list[str] | None = None, console: Console | None = None) -> None:
    parser = argparse.ArgumentParser(description="klamm broker with many partitions")
    parser.add_argument("--partitions", type=int, nargs="+", default=[50_000])
    parser.add_argument("--fd-limit", type=int, default=1024, help="0: the inherited limit")
    args = parser.parse_args(argv)
    results = [run(n, args.fd_limit) for n in args.partitions]
    (console or Console()).print(table(results))


if __name__ == "__main__":
    main()
