"""Helpers shared by the schema registry tests (their fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from klamm.schema.server import RegistryServer


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
