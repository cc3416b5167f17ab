"""Run the registry: the `_schemas` log, the state, the REST app and uvicorn, started and stopped
together. Used in-process by `klamm broker --schema-registry` and standalone by `klamm registry`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

from klamm.schema.app import build_app
from klamm.schema.log import DEFAULT_TOPIC, KafkaLog
from klamm.schema.service import Registry
from klamm.schema.state import RegistryState

log = logging.getLogger("klamm.schema")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The host (the broker, or `klamm registry`) owns SIGINT/SIGTERM and stops us itself.
        yield


class RegistryServer:
    """A Schema Registry on `host:port` whose state lives in `topic` of the Kafka at `bootstrap`."""

    def __init__(
        self,
        bootstrap: str,
        host: str = "127.0.0.1",
        port: int = 8081,
        topic: str = DEFAULT_TOPIC,
        client_config: dict[str, Any] | None = None,
    ) -> None:
        self.state = RegistryState()
        self.log = KafkaLog(bootstrap, self.state, topic, client_config)
        self.registry = Registry(self.state, self.log)
        config = uvicorn.Config(
            build_app(self.registry),
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def port(self) -> int:
        if self._socket is not None:
            return int(self._socket.getsockname()[1])
        return self._server.config.port

    @property
    def url(self) -> str:
        return f"http://{self._server.config.host}:{self.port}"

    async def start(self) -> None:
        """Replay `_schemas` (creating it if missing), then listen. Raises on either failing."""
        # We bind the socket ourselves: uvicorn answers a failed bind with sys.exit(), which
        # would end the event loop it shares with the broker.
        config = self._server.config
        try:
            self._socket = _listen(config.host, config.port)
        except OSError as exc:
            raise OSError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
        try:
            await asyncio.to_thread(self.log.start)
        except BaseException:
            self._socket.close()
            raise
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self.stop()
                raise OSError(f"cannot serve on {config.host}:{config.port}")
            await asyncio.sleep(0.01)
        log.info("schema registry listening on %s", self.url)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception, SystemExit):
                await self._task
            self._task = None
        if self._socket is not None:
            self._socket.close()
        await asyncio.to_thread(self.log.stop)


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket. Made with proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on
    sockets that say so (socket.create_server's proto 0 does not), and without it a keep-alive
    client's request waits out the peer's delayed ACK - 40 ms a response, measured."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # uvicorn's default backlog
    except OSError:
        sock.close()
        raise
    return sock
