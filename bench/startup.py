"""How long `klamm broker` takes from process start to accepting connections.

    python -m bench.startup [--runs 5]

Each run spawns `python -m klamm broker` on a fresh port (an empty data dir, then the same dir
again so recovery is included) and times until a TCP connect succeeds.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from rich.console import Console
from rich.table import Table


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_to_listen(data_dir: str) -> float:
    port = _free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "klamm", "broker", "--listen", f"127.0.0.1:{port}",
         "--data-dir", data_dir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                return time.perf_counter() - started
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("the broker exited during start-up") from None
                time.sleep(0.002)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="klamm broker start-up time")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data_dir:
        times = [time_to_listen(data_dir) for _ in range(args.runs)]
    table = Table(title=f"klamm broker: process start to listening ({args.runs} runs)")
    for column in ("min ms", "median ms", "max ms"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{t * 1000:.0f}" for t in (min(times), statistics.median(times), max(times))))
    Console().print(table)


if __name__ == "__main__":
    main()
