"""Serving the console with uvicorn: standalone (`klamm console`) or beside a broker.

Beside a broker, `ConsoleServer` runs on the broker's own event loop as one more task: it starts
after the broker listens (it connects to it like any client) and stops before the broker does.
uvicorn's own signal handling is turned off (`_QuietServer`): the process's owner (the broker's
`serve`, or `klamm console`'s main) decides when to stop, and two owners of SIGINT would race.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from .app import Console
from .config import ConsoleConfig

log = logging.getLogger("klamm.console")


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ConsoleServer:
    """`await start()` binds (port 0 picks a free port: see `url`), `await stop()` ends it."""

    def __init__(self, config: ConsoleConfig) -> None:
        config.check()
        self._config = config
        self._console = Console(config)
        self._server = _QuietServer(
            uvicorn.Config(
                self._console.build(lifespan=False),
                log_config=None,  # klamm's logging setup applies (klamm.cli.logs)
                access_log=False,
                lifespan="off",
                server_header=False,
            )
        )
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("the console is not started")
        host, port = self._socket.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    async def start(self) -> None:
        """Reach the cluster, then listen; a cluster that cannot be reached raises the client's
        error (klamm.client.KafkaError) before anything listens."""
        await self._console.open()
        family = socket.AF_INET6 if ":" in self._config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._config.host, self._config.port))
        except OSError:
            sock.close()
            await self._console.close()
            raise
        sock.set_inheritable(True)
        self._socket = sock
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="console")
        while not self._server.started:
            if self._task.done():
                await self._console.close()
                sock.close()
                self._task.result()  # start-up failed: raise its error
                raise RuntimeError("the console stopped during start-up")
            await asyncio.sleep(0.02)
        log.info("console at %s", self.url)

    async def wait_stopped(self) -> None:
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._socket is not None:
            self._socket.close()
        await self._console.close()
