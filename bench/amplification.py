"""Small hostile requests against a klamm broker (issue 11, findings 8-10): what each costs the
broker and another client. Each scenario runs on a fresh `python -m klamm broker` child process.

    python bench/amplification.py            # every scenario
    python bench/amplification.py long-poll  # one of them

Prints one table: request size, response size, seconds to answer, the broker's peak RSS growth,
and for `long-poll` the latency of another client's acks=all produces while the attack runs.
"""

from __future__ import annotations

import io
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kio.serial import entity_reader, entity_writer

from klamm.protocol.build import build
from klamm.protocol.messages import request_type, response_type
from klamm.protocol.record_batch import Record, RecordBatch, build_batch

FOREVER = 2**31 - 1


class Client:
    """Just enough of the Kafka protocol to send one request and time its answer."""

    def __init__(self, port: int, timeout: float = 300) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.correlation = 0

    def encode(self, api_key: int, version: int, **fields: Any) -> bytes:
        self.correlation += 1
        cls = request_type(api_key, version)
        head = struct.pack(">hhih", api_key, version, self.correlation, 5) + b"bench"
        if cls.__flexible__:
            head += b"\0"
        body = io.BytesIO()
        entity_writer(cls)(body, build(cls, **fields))
        payload = head + body.getvalue()
        return struct.pack(">i", len(payload)) + payload

    def request(self, api_key: int, version: int, **fields: Any) -> tuple[Any, int, int]:
        """(response, request bytes, response bytes)."""
        frame = self.encode(api_key, version, **fields)
        self.sock.sendall(frame)
        size = struct.unpack(">i", self._exact(4))[0]
        data = self._exact(size)
        cls = response_type(api_key, version)
        offset = 4 + (1 if cls.__flexible__ else 0)
        return entity_reader(cls)(data, offset)[0], len(frame), size + 4

    def _exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(min(n - len(out), 1 << 20))
            if not chunk:
                raise ConnectionError("closed by broker")
            out += chunk
        return bytes(out)

    def close(self) -> None:
        self.sock.close()


@contextmanager
def broker() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="klamm-amp-") as data:
        cmd = [sys.executable, "-m", "klamm", "broker", "--listen", f"127.0.0.1:{port}",
               "--data-dir", data, "--log-level", "ERROR"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("broker did not start") from None
                    time.sleep(0.05)
            yield port, proc
        finally:
            proc.terminate()
            proc.wait(30)


def peak_rss_mib(proc: subprocess.Popen[bytes]) -> float:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def create(client: Client, name: str, partitions: int) -> None:
    client.request(19, 4, timeout=120_000, validate_only=False,
                   topics=[{"name": name, "num_partitions": partitions, "replication_factor": 1,
                            "assignments": [], "configs": []}])  # fmt: skip


def produce(client: Client, topic: str, value: bytes, partition: int = 0) -> None:
    batch = build_batch(RecordBatch(records=[Record(0, int(time.time() * 1000), b"k", value)]))
    client.request(0, 7, transactional_id=None, acks=-1, timeout=30_000,
                   topic_data=[{"name": topic, "partition_data": [
                       {"index": partition, "records": batch}]}])  # fmt: skip


def fetch_fields(topic: str, times: int, *, min_bytes: int, max_wait: int, part_max: int) -> Any:
    return {
        "replica_id": -1, "max_wait": max_wait, "min_bytes": min_bytes, "max_bytes": FOREVER,
        "isolation_level": 0, "session_id": 0, "session_epoch": -1,
        "forgotten_topics_data": [], "rack_id": "",
        "topics": [{"topic": topic, "partitions": [{
            "partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
            "log_start_offset": -1, "partition_max_bytes": part_max}]}] * times,
    }  # fmt: skip


Row = dict[str, str]


def long_poll(port: int, proc: subprocess.Popen[bytes]) -> Row:
    """An 82-byte-class Fetch listing one partition 1000 times with min_bytes and max_wait
    2^31-1, parked, while another client makes 20 acks=all produces to that partition."""
    setup = Client(port)
    create(setup, "hot", 1)
    for _ in range(100):
        produce(setup, "hot", b"x" * 1000)

    def victim() -> list[float]:
        times = []
        for _ in range(20):
            started = time.monotonic()
            produce(setup, "hot", b"v")
            times.append(time.monotonic() - started)
        return sorted(times)

    alone = victim()
    hostile = Client(port)
    frame = hostile.encode(
        1, 11, **fetch_fields("hot", 1000, min_bytes=FOREVER, max_wait=FOREVER, part_max=1 << 20)
    )
    hostile.sock.sendall(frame)
    time.sleep(0.3)
    attacked = victim()
    hostile.close()
    setup.close()
    return {
        "request": f"{len(frame)} B",
        "victim p50 / max alone": f"{alone[10] * 1000:.1f} / {alone[-1] * 1000:.1f} ms",
        "victim p50 / max attacked": f"{attacked[10] * 1000:.1f} / {attacked[-1] * 1000:.1f} ms",
        "peak RSS": f"{peak_rss_mib(proc):.0f} MiB",
    }


def timed(client: Client, api_key: int, version: int, **fields: Any) -> tuple[Any, Row]:
    started = time.monotonic()
    response, sent, received = client.request(api_key, version, **fields)
    return response, {
        "request": f"{sent / 1024:.0f} KiB" if sent > 4096 else f"{sent} B",
        "response": f"{received / 2**20:.1f} MiB" if received > 2**20 else f"{received} B",
        "seconds": f"{time.monotonic() - started:.2f}",
    }


def fetch_twenty(port: int, proc: subprocess.Popen[bytes]) -> Row:
    """A 10 MB partition listed 20 times in one Fetch."""
    client = Client(port)
    create(client, "ten-mb", 1)
    for _ in range(10):
        produce(client, "ten-mb", b"z" * 1_000_000)
    before = peak_rss_mib(proc)
    _, row = timed(client, 1, 11, **fetch_fields("ten-mb", 20, min_bytes=1, max_wait=0,
                                                 part_max=FOREVER))  # fmt: skip
    row["peak RSS growth"] = f"{peak_rss_mib(proc) - before:.0f} MiB"
    return row


def metadata_500(port: int, proc: subprocess.Popen[bytes]) -> Row:
    """One 2000-partition topic named 500 times in one Metadata."""
    client = Client(port)
    create(client, "wide", 2000)
    before = peak_rss_mib(proc)
    _, row = timed(client, 3, 9, topics=[{"name": "wide"}] * 500,
                   allow_auto_topic_creation=False, include_cluster_authorized_operations=False,
                   include_topic_authorized_operations=False)  # fmt: skip
    row["peak RSS growth"] = f"{peak_rss_mib(proc) - before:.0f} MiB"
    return row


def describe_groups(port: int, proc: subprocess.Popen[bytes]) -> Row:
    """DescribeGroups with 1M empty group ids."""
    client = Client(port)
    before = peak_rss_mib(proc)
    _, row = timed(client, 15, 5, groups=[""] * 1_000_000, include_authorized_operations=False)
    row["peak RSS growth"] = f"{peak_rss_mib(proc) - before:.0f} MiB"
    return row


def describe_configs(port: int, proc: subprocess.Popen[bytes]) -> Row:
    """DescribeConfigs naming one topic 20 000 times."""
    client = Client(port)
    create(client, "conf", 1)
    before = peak_rss_mib(proc)
    resource = {"resource_type": 2, "resource_name": "conf", "configuration_keys": None}
    _, row = timed(client, 32, 4, resources=[resource] * 20_000, include_synonyms=False,
                   include_documentation=False)  # fmt: skip
    row["peak RSS growth"] = f"{peak_rss_mib(proc) - before:.0f} MiB"
    return row


SCENARIOS: dict[str, Callable[[int, subprocess.Popen[bytes]], Row]] = {
    "long-poll": long_poll,
    "fetch-x20": fetch_twenty,
    "metadata-x500": metadata_500,
    "describe-groups-1M": describe_groups,
    "describe-configs-x20k": describe_configs,
}


def main(argv: list[str]) -> None:
    names = argv or list(SCENARIOS)
    for name in names:
        with broker() as (port, proc):
            row = SCENARIOS[name](port, proc)
        print(f"{name:24} " + "  ".join(f"{k}: {v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
