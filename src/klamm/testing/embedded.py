"""`EmbeddedBroker`: a real klamm broker for tests, on an ephemeral port and a temp directory.

Two modes:
- "thread" (default): the broker runs on its own event loop in a background thread of this
  process. Starts in milliseconds; works from sync and async tests alike.
- "subprocess": `python -m klamm broker` in a child process, for tests that kill it (SIGKILL)
  and restart it on the same data directory.

Both listen on 127.0.0.1 only, on a port the OS picked, and are stopped when the context exits.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

from klamm.broker.config import BrokerConfig, config_to_properties

Mode = Literal["thread", "subprocess"]
T = TypeVar("T")


class EmbeddedBroker:
    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        mode: Mode = "thread",
        config: BrokerConfig | None = None,
        port: int = 0,
        startup_timeout: float = 20.0,
        **settings: Any,
    ) -> None:
        if mode not in ("thread", "subprocess"):
            raise ValueError(f"mode must be 'thread' or 'subprocess', not {mode!r}")
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="klamm-"))
        base = config or BrokerConfig()
        self.config = base.replace(host="127.0.0.1", port=port, data_dir=self.data_dir, **settings)
        self.mode = mode
        self.port = port
        self._timeout = startup_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._process: subprocess.Popen[bytes] | None = None
        # Files next to the data directory that subprocess mode writes (its log and properties):
        # removed on exit like an own data directory, even when the data directory is the caller's.
        self._own_files: list[Path] = []
        self.broker: Any = None  # the Broker object, in thread mode

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while a subprocess broker runs (to read its memory, say);
        None in thread mode or when stopped."""
        return self._process.pid if self._process is not None else None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> EmbeddedBroker:
        if self.mode == "thread":
            self._start_thread()
        else:
            self._start_process()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            assert self._loop is not None and self._stop is not None
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=30)
            self._thread = None
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._close_process_output()
            self._process = None

    def kill(self) -> None:
        """SIGKILL the subprocess broker: no shutdown, no flush (crash tests)."""
        assert self._process is not None, "kill() needs mode='subprocess'"
        self._process.kill()
        self._process.wait()
        self._close_process_output()
        self._process = None

    def restart(self) -> None:
        """Start again on the same data directory and port."""
        self.stop()
        self.start()

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run `fn` on the broker's event loop thread and return its result (thread mode):
        the broker's state is consistent only there, between two of its callbacks."""
        loop = self._loop
        if self._thread is None or loop is None:
            raise RuntimeError("call() needs a running broker in mode='thread'")

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        for path in self._own_files:
            path.unlink(missing_ok=True)
        self._own_files.clear()

    # --- thread mode --------------------------------------------------------------------------

    def _start_thread(self) -> None:
        from klamm.broker.server import serve

        started = threading.Event()
        failure: list[BaseException] = []

        def on_started(broker: Any) -> None:
            self.broker = broker
            self.port = broker.bound_port
            started.set()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            try:
                loop.run_until_complete(
                    serve(self.config.replace(port=self.port), self._stop, on_started)
                )
            except BaseException as exc:
                failure.append(exc)
                started.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="klamm-embedded-broker", daemon=True)
        self._thread.start()
        if not started.wait(self._timeout) or failure:
            raise RuntimeError("embedded broker failed to start") from (
                failure[0] if failure else None
            )

    # --- subprocess mode ----------------------------------------------------------------------

    def _start_process(self) -> None:
        if self.port == 0:
            self.port = _free_port()
        self._log_path = self.data_dir.parent / f"{self.data_dir.name}.broker.log"
        config_file = self.data_dir.parent / f"{self.data_dir.name}.properties"
        # A restart appends to the same log; only files this broker created are its to remove.
        self._own_files += [p for p in (self._log_path, config_file)
                            if not p.exists() and p not in self._own_files]  # fmt: skip
        self._log_file = open(self._log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        config_file.write_text(_properties(self.config.replace(port=self.port)))
        cmd = [sys.executable, "-m", "klamm", "broker", "--listen", f"127.0.0.1:{self.port}",
               "--data-dir", str(self.data_dir), "--config", str(config_file)]  # fmt: skip
        self._process = subprocess.Popen(
            cmd, stdout=self._log_file, stderr=subprocess.STDOUT, env={**os.environ}
        )
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"broker exited early; log: {self._log_path.read_text()[-2000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"broker did not start listening; log: {self._log_path}")

    def _close_process_output(self) -> None:
        self._log_file.close()

    def log_text(self) -> str:
        """The subprocess broker's log output so far."""
        return self._log_path.read_text() if self.mode == "subprocess" else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _properties(config: BrokerConfig) -> str:
    """The config file the subprocess broker reads: every setting of `config` that is not a
    default, so it runs as an in-process broker with the same config would."""
    return "".join(f"{key}={value}\n" for key, value in config_to_properties(config).items())
