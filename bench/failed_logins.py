"""What a password-guessing client costs the broker: failed SASL logins per second and CPU.

    python -m bench.failed_logins [--threads 8] [--seconds 5] [--delay-ms 100]

Spawns `python -m klamm broker` with a SASL_PLAINTEXT listener (one user) and runs `--threads`
clients that each, as fast as the broker lets them, connect, ask SaslHandshake v1 for PLAIN,
send a wrong password in SaslAuthenticate v2, read the answer and start again (an attacker does
not wait for the broker to close). Reports the
attempts per second and the broker's CPU seconds (user + system, from /proc) over the run.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kio.serial import entity_writer
from rich.console import Console
from rich.table import Table

from klamm.protocol.build import build
from klamm.protocol.messages import request_type

_TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(api_key: int, version: int, correlation: int, **fields: object) -> bytes:
    cls = request_type(api_key, version)
    body = io.BytesIO()
    entity_writer(cls)(body, build(cls, **fields))
    header = struct.pack(">hhih", api_key, version, correlation, 5) + b"bench"
    if cls.__flexible__:
        header += b"\0"
    payload = header + body.getvalue()
    return struct.pack(">i", len(payload)) + payload


_HANDSHAKE = _request(17, 1, 1, mechanism="PLAIN")
_AUTHENTICATE = _request(36, 2, 2, auth_bytes=b"\0alice\0wrong")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _recv_frame(sock: socket.socket) -> bytes:
    size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
    return sock.recv(size, socket.MSG_WAITALL)


def _guess_until(port: int, deadline: float, counts: list[int]) -> None:
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(_HANDSHAKE)
            _recv_frame(sock)
            sock.sendall(_AUTHENTICATE)
            _recv_frame(sock)  # the error; then on to the next guess, not waiting for the close
        counts.append(1)


def measure(threads: int, seconds: float, delay_ms: int) -> tuple[float, float]:
    """(failed logins per second, broker CPU seconds per second of the run)."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        config = Path(data_dir) / "broker.properties"
        config.write_text(
            f"listeners=SASL_PLAINTEXT://127.0.0.1:{port}\n"
            "sasl.enabled.mechanisms=PLAIN\n"
            "klamm.sasl.users=alice:secret\n"
            f"connection.failed.authentication.delay.ms={delay_ms}\n"
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "klamm", "broker", "--listen", f"127.0.0.1:{port}",
             "--data-dir", str(Path(data_dir) / "data"), "--config", str(config),
             "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the broker did not start") from None
                    time.sleep(0.02)
            counts: list[int] = []
            cpu_before = _cpu_seconds(process.pid)
            started = time.monotonic()
            workers = [
                threading.Thread(target=_guess_until, args=(port, started + seconds, counts))
                for _ in range(threads)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.monotonic() - started
            cpu = _cpu_seconds(process.pid) - cpu_before
            return len(counts) / elapsed, cpu / elapsed
        finally:
            process.terminate()
            process.wait(timeout=30)


def main(argv: list[str] | None = None, console: Console | None = None) -> None:
    parser = argparse.ArgumentParser(description="cost of failed SASL logins")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--delay-ms", type=int, default=100)
    args = parser.parse_args(argv)
    rate, cpu = measure(args.threads, args.seconds, args.delay_ms)
    table = Table(
        title=f"failed SASL/PLAIN logins: {args.threads} clients, {args.seconds:g} s, "
        f"connection.failed.authentication.delay.ms={args.delay_ms}"
    )
    for column in ("failed logins / s", "broker CPU s per s"):
        table.add_column(column, justify="right")
    table.add_row(f"{rate:.0f}", f"{cpu:.2f}")
    (console or Console()).print(table)


if __name__ == "__main__":
    main()
