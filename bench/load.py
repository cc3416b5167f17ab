"""Produce and consume loads for the broker hot-path benchmarks, and a broker process's CPU time.

Two load generators, each timed and checked (every message acknowledged, every message read back):
  * kcat (librdkafka in C): the broker's cost with a client that needs almost no CPU of its own;
  * confluent-kafka from Python: what a Python user sees on a machine the client shares.
Both produce with acks=all and linger.ms=5 and read everything back from the beginning. With more
than one partition, messages are spread over all of them (kcat: librdkafka's partitioner on null
keys; confluent-kafka: round robin) and the consumer is assigned every partition.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.producing import produce_all
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

# A consumer that has not read everything after this long reports the shortfall instead of hanging.
CONSUME_TIMEOUT_S = 300.0
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Workload:
    """`count` messages of `size` bytes over `partitions` partitions."""

    partitions: int
    size: int
    count: int

    @property
    def name(self) -> str:
        size = f"{self.size // 1024}KiB" if self.size % 1024 == 0 else f"{self.size}B"
        return f"{self.partitions}p {size}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15)


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU time of each thread of process `pid` so far, by thread id (the main
    thread's id is `pid`)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def _kcat_env() -> dict[str, str]:
    """kcat's environment: with confluent-kafka's own librdkafka (2.16) preloaded when the wheel
    has one. Debian's kcat links librdkafka 2.0.2, whose ApiVersions request Tansu does not
    answer; the preloaded library also makes kcat's client the one confluent-kafka uses."""
    import confluent_kafka

    libs = Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*"))
    return {**os.environ, "LD_PRELOAD": str(found[0])} if found else dict(os.environ)


def _payload_file(size: int, count: int) -> Path:
    """A file of `count` newline-separated messages of `size` bytes (kcat's input), cached."""
    path = Path(tempfile.gettempdir()) / f"klamm-bench-load-{size}x{count}.txt"
    if not path.exists() or path.stat().st_size != (size + 1) * count:
        line = b"x" * size + b"\n"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            for written in range(0, count, 1000):
                out.write(line * min(1000, count - written))
        tmp.replace(path)
    return path


def kcat_produce(bootstrap: str, topic: str, load: Workload) -> float:
    """Seconds for kcat to produce `load` and have every message acknowledged."""
    source = _payload_file(load.size, load.count)
    cmd = ["kcat", "-P", "-b", bootstrap, "-t", topic, "-X", "acks=all", "-X", "linger.ms=5",
           "-X", "queue.buffering.max.messages=1000000", "-l", str(source)]  # fmt: skip
    if load.partitions == 1:
        cmd += ["-p", "0"]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, timeout=CONSUME_TIMEOUT_S, env=_kcat_env())
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or b"ERROR" in done.stderr or b"Failed" in done.stderr:
        raise RuntimeError(f"kcat produce failed ({done.returncode}): {done.stderr[-500:]!r}")
    return elapsed


def kcat_consume(bootstrap: str, topic: str, load: Workload) -> float:
    """Seconds for kcat to read `load` back from the beginning (one byte of output a message)."""
    cmd = ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
           "-c", str(load.count), "-f", "."]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, timeout=CONSUME_TIMEOUT_S, env=_kcat_env())
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or len(done.stdout) != load.count:
        raise RuntimeError(
            f"kcat read {len(done.stdout)} of {load.count} ({done.returncode}): "
            f"{done.stderr[-500:]!r}"
        )
    return elapsed


def python_produce(bootstrap: str, topic: str, load: Workload) -> float:
    """Seconds for confluent-kafka to produce `load` and have every message acknowledged."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "enable.idempotence": False}
    )
    return produce_all(
        producer, topic, b"x" * load.size, load.count,
        partitions=load.partitions, flush_timeout_s=CONSUME_TIMEOUT_S,
    )  # fmt: skip


def python_consume(bootstrap: str, topic: str, load: Workload) -> float:
    """Seconds for confluent-kafka to read `load` back, from assign() to the last message."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-hotpaths", "enable.auto.commit": False}
    )
    try:
        started = time.perf_counter()
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(load.partitions)]
        )
        got = 0
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while got < load.count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"consumed only {got} of {load.count}")
            for msg in consumer.consume(10_000, 1.0):
                if msg.error():
                    raise KafkaException(msg.error())
                got += 1
        return time.perf_counter() - started
    finally:
        consumer.close()


CLIENTS = {
    "kcat": (kcat_produce, kcat_consume),
    "python": (python_produce, python_consume),
}
