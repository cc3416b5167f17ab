"""What idle client connections cost a broker: resident memory per connection, and the produce
throughput and latency of one active client while they are connected.

    python -m bench.idle_connections [--connections 0 1000 10000] [--rounds 3] [--no-tansu]

For each count, in interleaved rounds against klamm (subprocess broker, fresh data dir, fsync
before acks=all) and Tansu (memory storage, same run): opens the connections, has each send one
ApiVersions request and read the answer (so the broker has read from every socket), leaves them
idle, reads the broker's VmRSS from /proc, then runs the active client: a confluent-kafka
producer (acks=all, linger.ms=5) sends 1,000 msg/s for 2 s, timed from produce() to its delivery
report (librdkafka's own per-message latency), then 100,000 x 100 B as fast as it can.
"""

from __future__ import annotations

import argparse
import resource
import socket
import statistics
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from bench.brokers import Broker, brokers, create_topic
from bench.producing import produce_all
from confluent_kafka import Producer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# ApiVersions v0: an empty body after the header (client id "b").
_API_VERSIONS = struct.pack(">hhih", 18, 0, 1, 1) + b"b"

PACED_RATE = 1000  # msg/s: a steady client, far below what either broker sustains
PACED_SECONDS = 2.0
BURST = 100_000  # messages for the throughput figure


@dataclass
class ConnectionsResult:
    broker: str
    connections: int
    rss_before_kib: int
    rss_after_kib: int
    produce_rate: float  # msg/s, BURST x 100 B
    p50_ms: float  # produce() to delivery report, at PACED_RATE
    p99_ms: float

    @property
    def kib_per_connection(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / max(self.connections, 1)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc status")


def raise_fd_limit() -> None:
    """This process needs an fd per connection, and brokers it starts inherit the limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _answered(sock: socket.socket) -> None:
    sock.sendall(struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS)
    size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
    sock.recv(size, socket.MSG_WAITALL)


def open_idle(bootstrap: str, count: int, progress: Progress | None = None) -> list[socket.socket]:
    """`count` connections that each had one ApiVersions answered; the caller closes them."""
    host, port = bootstrap.rsplit(":", 1)
    socks: list[socket.socket] = []
    task = progress.add_task(f"open {count} connections", total=count) if progress else None
    try:
        for i in range(count):
            sock = socket.create_connection((host, int(port)), timeout=30)
            socks.append(sock)
            _answered(sock)
            if progress is not None and task is not None and i % 500 == 0:
                progress.update(task, completed=i)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    finally:
        if progress is not None and task is not None:
            progress.remove_task(task)
    return socks


def _percentile(data: list[float], q: float) -> float:
    data = sorted(data)
    return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


def active_client(bootstrap: str, topic: str) -> tuple[float, float, float]:
    """(msg/s for BURST x 100 B, p50 ms, p99 ms at PACED_RATE) of one acks=all producer."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "enable.idempotence": False}
    )
    latencies: list[float] = []
    errors: list[object] = []

    def timed(err: object, msg: object) -> None:
        if err is not None:
            errors.append(err)
        else:
            latencies.append(msg.latency() * 1000)  # type: ignore[attr-defined]

    payload = b"x" * 100
    producer.produce(topic, payload, partition=0)  # connect and learn the leader first
    producer.flush(30)
    total = int(PACED_RATE * PACED_SECONDS)
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / PACED_RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        producer.produce(topic, payload, partition=0, on_delivery=timed)
        producer.poll(0)
    producer.flush(60)
    if errors:
        raise RuntimeError(f"{len(errors)} paced messages failed, e.g. {errors[:3]}")
    p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
    rate = BURST / produce_all(producer, topic, payload, BURST)
    return rate, p50, p99


def measure(broker: Broker, connections: int, progress: Progress | None) -> ConnectionsResult:
    assert broker.pid is not None, "the broker must be a child process (its memory is read)"
    topic = f"idle-{connections}-{time.monotonic_ns()}"
    create_topic(broker.bootstrap, topic)
    with open_idle(broker.bootstrap, 1)[0]:
        time.sleep(0.5)
        before = rss_kib(broker.pid)
        socks = open_idle(broker.bootstrap, connections, progress)
        try:
            time.sleep(0.5)
            after = rss_kib(broker.pid)
            rate, p50, p99 = active_client(broker.bootstrap, topic)
        finally:
            for sock in socks:
                sock.close()
    return ConnectionsResult(broker.name, connections, before, after, rate, p50, p99)


def sweep(
    counts: list[int], rounds: int, with_tansu: bool, console: Console
) -> list[ConnectionsResult]:
    """Every count, `rounds` times, each broker fresh per round (rounds interleave brokers)."""
    raise_fd_limit()
    results: list[ConnectionsResult] = []
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=True,
    )  # fmt: skip
    with progress:
        overall = progress.add_task("connections", total=None)
        for _round in range(rounds):
            for name, manager in brokers(with_tansu=with_tansu):
                with manager as broker:
                    for count in counts:
                        progress.update(overall, description=f"{name}: {count} connections")
                        try:
                            results.append(measure(broker, count, progress))
                        except (OSError, RuntimeError) as exc:
                            console.print(f"  {name} with {count} connections failed: {exc}")
                        progress.advance(overall)
    return results


def median_rows(results: list[ConnectionsResult]) -> list[dict[str, object]]:
    """Per (broker, connections): the median and range of each figure over the rounds."""
    rows: list[dict[str, object]] = []
    keys = sorted({(r.broker, r.connections) for r in results}, key=lambda k: (k[1], k[0]))
    for broker, count in keys:
        group = [r for r in results if (r.broker, r.connections) == (broker, count)]
        row: dict[str, object] = {"broker": broker, "connections": count}
        for field in ("kib_per_connection", "produce_rate", "p50_ms", "p99_ms"):
            values = [float(getattr(r, field)) for r in group]
            row[field] = statistics.median(values)
            row[f"{field}_range"] = (min(values), max(values))
        row["rss_after_mib"] = statistics.median(r.rss_after_kib / 1024 for r in group)
        rows.append(row)
    return rows


def table(rows: list[dict[str, object]]) -> Table:
    out = Table(title="Idle connections: broker memory, and one active acks=all producer")
    for column in ("broker", "connections", "RSS MiB", "KiB per connection", "produce msg/s",
                   "p50 ms", "p99 ms (range)"):  # fmt: skip
        out.add_column(column, justify="left" if column == "broker" else "right")
    for row in rows:
        lo, hi = row["p99_ms_range"]  # type: ignore[misc]
        out.add_row(
            str(row["broker"]), f"{row['connections']:,}", f"{row['rss_after_mib']:.0f}",
            f"{row['kib_per_connection']:.1f}", f"{row['produce_rate']:,.0f}",
            f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f} ({lo:.1f}-{hi:.1f})",
        )  # fmt: skip
    return out


def main(argv: list[str] | None = None, console: Console | None = None) -> None:
    parser = argparse.ArgumentParser(description="broker memory per idle connection")
    parser.add_argument("--connections", type=int, nargs="+", default=[0, 1000, 10_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-tansu", action="store_true", help="klamm only")
    args = parser.parse_args(argv)
    console = console or Console()
    results = sweep(args.connections, args.rounds, not args.no_tansu, console)
    console.print(table(median_rows(results)))


if __name__ == "__main__":
    main()
