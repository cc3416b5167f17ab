"""File descriptors a `klamm broker` holds for N partitions of S segments each.

    python -m bench.fds [--partitions 1000] [--segments 3] [--fd-limit 1024]

Writes a topic of N partitions, each with S one-batch segments, through the storage layer;
starts `python -m klamm broker` on it (in a child whose RLIMIT_NOFILE, soft and hard, is
--fd-limit; 0 keeps the inherited one); counts the broker's descriptors (/proc/PID/fd) once it
listens and again after one Fetch has read offset 0 of every partition (the oldest segment);
then checks that 100 new connections are served. Run it with PYTHONPATH pointing at another
checkout to compare versions: the data is written with whichever klamm is imported.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kio.serial import entity_reader, entity_writer
from rich.console import Console
from rich.table import Table

from klamm.protocol.build import build
from klamm.protocol.messages import request_type, response_type
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.storage.config import LogConfig
from klamm.storage.log import PartitionLog
from klamm.storage.log_manager import LogManager

TOPIC = "fds"


def write_data(data_dir: Path, partitions: int, segments: int) -> None:
    now = int(time.time() * 1000)
    manager = LogManager(data_dir, lambda: now)
    manager.load()
    manager.create_topic(TOPIC, partitions, {"retention.ms": "-1"})
    manager.close()
    tiny = LogConfig(segment_bytes=50, retention_ms=-1)  # every batch rolls a segment
    for partition in range(partitions):
        plog = PartitionLog.open(data_dir / f"{TOPIC}-{partition}", tiny, lambda: now)
        for i in range(segments):
            plog.append(
                bytearray(build_batch(RecordBatch(records=[Record(0, now, None, b"%d" % i)])))
            )
        plog.close()


def request(sock: socket.socket, api_key: int, version: int, **fields: Any) -> Any:
    """Send one request built from `fields`; the decoded response."""
    return decode(api_key, version, exchange(sock, api_key, version, **fields))


def decode(api_key: int, version: int, frame: bytes) -> Any:
    rcls = response_type(api_key, version)
    return entity_reader(rcls)(frame, 4 + (1 if rcls.__flexible__ else 0))[0]


def exchange(sock: socket.socket, api_key: int, version: int, **fields: Any) -> bytes:
    """Send one request built from `fields`; the response frame as received (not decoded)."""
    cls = request_type(api_key, version)
    body = io.BytesIO()
    entity_writer(cls)(body, build(cls, **fields))
    head = struct.pack(">hhih", api_key, version, 1, 5) + b"bench"
    if cls.__flexible__:
        head += b"\0"
    payload = head + body.getvalue()
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _recv(sock, 4))[0]
    return _recv(sock, size)


def _recv(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the broker")
        data += chunk
    return bytes(data)


def fetch_all(port: int, partitions: int) -> int:
    """One Fetch of offset 0 of every partition; returns how many answered without error."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        response = request(
            sock, 1, 11, replica_id=-1, max_wait=0, min_bytes=0, max_bytes=64 << 20,
            isolation_level=0, session_id=0, session_epoch=-1, forgotten_topics_data=[],
            rack_id="", topics=[{"topic": TOPIC, "partitions": [
                {"partition": p, "current_leader_epoch": -1, "fetch_offset": 0,
                 "log_start_offset": -1, "partition_max_bytes": 1024} for p in range(partitions)]}],
        )  # fmt: skip
    return sum(1 for r in response.responses for p in r.partitions if p.error_code == 0)


def new_connections_served(port: int, count: int) -> int:
    served = 0
    for _ in range(count):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                request(sock, 18, 0)
                served += 1
        except OSError:
            pass
    return served


def run(partitions: int, segments: int, fd_limit: int) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        write_data(data_dir, partitions, segments)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]

        def limit() -> None:
            if fd_limit:
                resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

        log_path = Path(tmp) / "broker.log"
        with open(log_path, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "klamm", "broker", "--listen", f"127.0.0.1:{port}",
                 "--data-dir", str(data_dir)],
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=limit,
            )  # fmt: skip
        row = {"fds after start": "-", "fds after reading": "-", "partitions served": "-",
               "new connections served": "-", "offline partitions": "-"}  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while "listening on" not in log_path.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    row["fds after start"] = "did not start"
                    return row
                time.sleep(0.05)
            row["offline partitions"] = str(log_path.read_text().count("is offline"))
            row["fds after start"] = str(len(os.listdir(f"/proc/{process.pid}/fd")))
            row["partitions served"] = f"{fetch_all(port, partitions)}/{partitions}"
            row["fds after reading"] = str(len(os.listdir(f"/proc/{process.pid}/fd")))
            row["new connections served"] = f"{new_connections_served(port, 100)}/100"
            return row
        finally:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None, console: Console | None = None) -> None:
    parser = argparse.ArgumentParser(description="klamm broker file descriptors")
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--segments", type=int, default=3)
    parser.add_argument("--fd-limit", type=int, default=0, help="0: the inherited limit")
    args = parser.parse_args(argv)
    row = run(args.partitions, args.segments, args.fd_limit)
    limit = args.fd_limit or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    table = Table(
        title=f"{args.partitions} partitions x {args.segments} segments, fd limit {limit}"
    )
    for column in row:
        table.add_column(column, justify="right")
    table.add_row(*row.values())
    (console or Console()).print(table)


if __name__ == "__main__":
    main()
