"""Run the registry: the `_schemas` log, the state, the REST app and uvicorn, started and stopped
together. Used in-process by `klamm broker --schema-registry` and standalone by `klamm registry`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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

    @property
    def port(self) -> int:
        sockets = self._server.servers[0].sockets if self._server.servers else []
        return int(sockets[0].getsockname()[1]) if sockets else self._server.config.port

    @property
    def url(self) -> str:
        return f"http://{self._server.config.host}:{self.port}"

    async def start(self) -> None:
        """Replay `_schemas` (creating it if missing), then listen. Raises on either failing."""
        await asyncio.to_thread(self.log.start)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                await asyncio.to_thread(self.log.stop)
                self._task.result()  # raises the bind error
                raise OSError(
                    f"cannot listen on {self._server.config.host}:{self._server.config.port}"
                )
            await asyncio.sleep(0.01)
        log.info("schema registry listening on %s", self.url)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception, SystemExit):
                await self._task
            self._task = None
        await asyncio.to_thread(self.log.stop)
