"""What an idle client connection costs the broker: resident memory per connection.

    python -m bench.idle_connections [--connections 2000]

Spawns `python -m klamm broker` on a fresh port and data dir, opens the connections, has each
send one ApiVersions request and read the answer (so the broker has read from every socket),
then leaves them idle and reads the broker's VmRSS from /proc before and after.
"""

from __future__ import annotations

import argparse
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

# ApiVersions v0: an empty body after the header (client id "b").
_API_VERSIONS = struct.pack(">hhih", 18, 0, 1, 1) + b"b"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc status")


def _raise_fd_limit(_: object = None) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _answered(sock: socket.socket) -> None:
    sock.sendall(struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS)
    size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
    sock.recv(size, socket.MSG_WAITALL)


def measure(connections: int) -> tuple[int, int]:
    """Broker RSS in KiB with no connection, then with `connections` idle ones."""
    _raise_fd_limit()
    port = _free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        process = subprocess.Popen(
            [sys.executable, "-m", "klamm", "broker", "--listen", f"127.0.0.1:{port}",
             "--data-dir", data_dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_raise_fd_limit,  # the child needs an fd per connection too
        )  # fmt: skip
        socks: list[socket.socket] = []
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    first = socket.create_connection(("127.0.0.1", port), timeout=10)
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the broker did not start") from None
                    time.sleep(0.02)
            _answered(first)
            socks.append(first)
            time.sleep(0.5)
            before = _rss_kib(process.pid)
            for _ in range(connections - 1):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                _answered(sock)
                socks.append(sock)
            time.sleep(0.5)
            return before, _rss_kib(process.pid)
        finally:
            for sock in socks:
                sock.close()
            process.terminate()
            process.wait(timeout=30)


def main(argv: list[str] | None = None, console: Console | None = None) -> None:
    parser = argparse.ArgumentParser(description="broker memory per idle connection")
    parser.add_argument("--connections", type=int, default=2000)
    args = parser.parse_args(argv)
    before, after = measure(args.connections)
    table = Table(title=f"klamm broker RSS with {args.connections} idle connections")
    for column in ("RSS before MiB", "RSS after MiB", "KiB per connection"):
        table.add_column(column, justify="right")
    per = (after - before) / max(args.connections - 1, 1)
    table.add_row(f"{before / 1024:.0f}", f"{after / 1024:.0f}", f"{per:.1f}")
    (console or Console()).print(table)


if __name__ == "__main__":
    main()
