"""Fixtures: a real Schema Registry (klamm.schema.server) on the session's klamm broker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from klamm.schema.app import build_app
from klamm.schema.log import MemoryLog
from klamm.schema.server import RegistryServer
from klamm.schema.service import Registry
from klamm.schema.state import RegistryState


class RunningRegistry:
    """A RegistryServer on its own event loop in a thread, listening on a port the OS picked."""

    def __init__(self, bootstrap: str, topic: str = "_schemas") -> None:
        self.server = RegistryServer(bootstrap, "127.0.0.1", 0, topic=topic)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> RunningRegistry:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(60)
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="session")
def registry(kafka_broker: Any) -> Iterator[RunningRegistry]:
    with RunningRegistry(kafka_broker.bootstrap) as running:
        yield running


@pytest.fixture
def registry_url(registry: RunningRegistry) -> str:
    return registry.url


@pytest.fixture
def memory_registry() -> Iterator[tuple[TestClient, MemoryLog]]:
    """The REST app over an in-memory log: for API semantics without Kafka."""
    state = RegistryState()
    log = MemoryLog(state)
    with TestClient(build_app(Registry(state, log))) as client:
        yield client, log
