"""Run a broker until told to stop: the event loop, signals, and clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from klamm.broker.config import BrokerConfig
from klamm.broker.node import Broker

log = logging.getLogger("klamm.broker")


async def serve(
    config: BrokerConfig,
    stop: asyncio.Event | None = None,
    on_started: Callable[[Broker], None] | None = None,
    before_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Start a broker, run until `stop` is set or SIGINT/SIGTERM arrives, then shut down cleanly.
    `before_stop` runs first, while the broker still serves: what runs beside it in this process
    (the console, the registry) closes its clients before the listener goes, instead of having
    them log connection failures on the way out."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    broker = Broker(config)
    await broker.start()
    try:
        if on_started is not None:
            on_started(broker)
        await stop.wait()
        log.info("shutting down")
        if before_stop is not None:
            await before_stop()
    finally:
        await broker.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)


def run(config: BrokerConfig) -> None:
    """Blocking entry point: uvloop when installed (an optional accelerator), else asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
