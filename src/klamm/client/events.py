"""Instrumentation events, KafkaJS style: `client.on(Events.GROUP_JOIN, listener)`.

A listener gets one `Event` (id, type, timestamp, payload) and may be sync or async. Like KafkaJS,
errors raised by listeners are logged and never break the client. Two kinds of emission:

- `emit()`: fire and forget; the client does not wait for listeners.
- `emit_and_wait()`: the client awaits the listeners; used for rebalance listeners
  (PARTITIONS_ASSIGNED / PARTITIONS_REVOKED), whose whole point is to run before the rebalance
  completes, e.g. to flush state for partitions this member is about to lose.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from klamm.client.errors import ConfigError

log = logging.getLogger("klamm.client")


class Events(enum.Enum):
    """Event names. `.value` is KafkaJS's suffix; `Event.type` adds the client prefix, e.g.
    "consumer.group_join"."""

    CONNECT = "connect"
    DISCONNECT = "disconnect"
    STOP = "stop"
    CRASH = "crash"
    HEARTBEAT = "heartbeat"
    COMMIT_OFFSETS = "commit_offsets"
    GROUP_JOIN = "group_join"
    FETCH_START = "fetch_start"
    FETCH = "fetch"
    START_BATCH_PROCESS = "start_batch_process"
    END_BATCH_PROCESS = "end_batch_process"
    REBALANCING = "rebalancing"
    RECEIVED_UNSUBSCRIBED_TOPICS = "received_unsubscribed_topics"
    # KafkaJS's network events. librdkafka sends the requests and reports none of these, so they
    # never fire; they exist so ported code that listens to them still runs (docs/kafkajs.md).
    REQUEST = "network.request"
    REQUEST_TIMEOUT = "network.request_timeout"
    REQUEST_QUEUE_SIZE = "network.request_queue_size"
    # klamm's additions: rebalance listeners (awaited) and the retry/DLQ pattern.
    PARTITIONS_ASSIGNED = "partitions_assigned"
    PARTITIONS_REVOKED = "partitions_revoked"
    PARTITIONS_LOST = "partitions_lost"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    #: Milliseconds since the epoch, like KafkaJS.
    timestamp: int
    payload: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], Any]
_ids = itertools.count()


class EventEmitter:
    """Listeners per event for one client; `prefix` is "consumer", "producer" or "admin"."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._listeners: dict[Events, list[Listener]] = {}
        # Fire-and-forget listener tasks are kept so they are not garbage-collected mid-run.
        self._tasks: set[asyncio.Task[None]] = set()

    def on(self, event: Events | str, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns a function that removes it (as KafkaJS does). `event` is an
        `Events` member or KafkaJS's name of it, e.g. "consumer.group_join"."""
        event = self.event_named(event)
        if not callable(listener):
            raise ConfigError(f"listener must be a function, not {listener!r}")
        self._listeners.setdefault(event, []).append(listener)

        def remove() -> None:
            listeners = self._listeners.get(event, [])
            if listener in listeners:
                listeners.remove(listener)

        return remove

    def event_named(self, event: Events | str) -> Events:
        """The `Events` member for `event`: a member, or its type string for this client."""
        if isinstance(event, Events):
            return event
        if isinstance(event, str):
            for member in Events:
                if event == f"{self._prefix}.{member.value}":
                    return member
        names = ", ".join(f"{self._prefix}.{m.value}" for m in Events)
        raise ConfigError(f"event name should be an Events member or one of {names}: {event!r}")

    def has_listeners(self, event: Events) -> bool:
        return bool(self._listeners.get(event))

    def _event(self, event: Events, payload: dict[str, Any]) -> Event:
        return Event(
            id=next(_ids),
            type=f"{self._prefix}.{event.value}",
            timestamp=int(time.time() * 1000),
            payload=payload,
        )

    def emit(self, event: Events, **payload: Any) -> None:
        """Call listeners without waiting for async ones. Must run on the event loop thread."""
        listeners = self._listeners.get(event)
        if not listeners:
            return
        ev = self._event(event, payload)
        for listener in list(listeners):
            try:
                result = listener(ev)
            except Exception:
                log.exception("listener for %s failed", ev.type)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(self._guard(ev.type, result))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def emit_and_wait(self, event: Events, **payload: Any) -> None:
        """Call listeners one by one, awaiting async ones."""
        listeners = self._listeners.get(event)
        if not listeners:
            return
        ev = self._event(event, payload)
        for listener in list(listeners):
            try:
                result = listener(ev)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("listener for %s failed", ev.type)

    @staticmethod
    async def _guard(name: str, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("listener for %s failed", name)


class Connectable:
    """What Producer, Consumer and Admin share, as in KafkaJS: `async with` runs connect() and
    disconnect(), and `on(event, listener)` subscribes to the instance's events."""

    events: EventEmitter

    async def connect(self) -> None:
        raise NotImplementedError

    async def disconnect(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    def on(self, event: Events | str, listener: Listener) -> Callable[[], None]:
        return self.events.on(event, listener)
