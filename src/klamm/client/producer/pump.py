"""The librdkafka pump: one librdkafka producer whose delivery reports the event loop serves.

See the package's docstring for the concurrency contract and fatal errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import confluent_kafka

from klamm.client.connectivity import create_client
from klamm.client.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NumberOfRetriesExceeded,
    from_librdkafka,
)
from klamm.client.retry import RetryPolicy

log = logging.getLogger("klamm.client")

# While messages are in flight, the loop serves delivery reports this often: 1 ms adds at most
# that to send() latency, and a poll(0) that finds nothing costs a few microseconds.
PUMP_INTERVAL_S = 0.001
# When librdkafka's local queue is full we wait this long for reports to drain it, then retry.
QUEUE_FULL_WAIT_S = 0.001


class ConnectionWatch:
    """librdkafka `error_cb` that remembers the last connection failure (refused, broken, all
    brokers down) and when it happened, then forwards the error to the user's callback, if any.
    Called on the thread serving poll(): the event loop's pump."""

    def __init__(self, chained: Callable[[Any], None] | None = None) -> None:
        self.error: Any = None
        self.at = 0.0
        self._chained = chained

    def __call__(self, err: Any) -> None:
        if isinstance(from_librdkafka(err), KafkaConnectionError):
            self.error, self.at = err, time.monotonic()
        if self._chained is not None:
            self._chained(err)

    def since(self, seconds: float) -> Any:
        """The connection failure of the last `seconds`, or None."""
        if self.error is not None and time.monotonic() - self.at <= seconds:
            return self.error
        return None


class RdProducer:
    """One librdkafka producer, its delivery reports served on the event loop by `poll(0)`.

    Why not a poller thread: every delivery callback needs the GIL, and a thread fighting the
    producing coroutine for it costs more than the callbacks themselves (measured: 0.2x raw
    confluent-kafka with a thread, see bench/client_vs_raw.py). `poll(0)` never blocks, so the
    loop serves reports itself, every `PUMP_INTERVAL_S` while messages are in flight.
    """

    def __init__(self, conf: dict[str, Any], retry: RetryPolicy) -> None:
        conf = dict(conf)
        self.connection = ConnectionWatch(conf.get("error_cb"))
        conf["error_cb"] = self.connection
        self.rd, self.auth = create_client(confluent_kafka.Producer, conf)
        self._retry = retry
        self._delivery_timeout_s = (
            conf.get("message.timeout.ms", conf.get("delivery.timeout.ms", 300_000)) / 1000
        )
        self._pump_handle: asyncio.TimerHandle | None = None
        self._closed = False
        #: The fatal error (a `confluent_kafka.KafkaError`) that made this instance unusable, once
        #: librdkafka reported it; see the module's docstring.
        self.fatal: Any = None

    def delivery_failure(self, err: Any) -> KafkaError:
        """The error a send fails with when librdkafka reports `err` for one of its messages.

        After a fatal error, that error (the messages were purged, or refused with _FATAL, which
        names no cause). A retriable `err` in a delivery report means librdkafka retried until the
        delivery timeout, which the retry policy set (Producer): as KafkaJS's retrier, the send
        fails with NumberOfRetriesExceeded (not retriable), caused by the last error, or by the
        connection failure seen meanwhile when the delivery just timed out."""
        if self.fatal is not None:
            return from_librdkafka(self.fatal)
        error = from_librdkafka(err)
        if not error.retriable:
            return error
        if isinstance(error, KafkaTimeoutError):
            down = self.connection.since(self._delivery_timeout_s)
            if down is not None:
                error = from_librdkafka(down)
        waits = self._retry.waits_ms()
        return NumberOfRetriesExceeded(
            error, retry_count=self._retry.retries, retry_time_ms=waits[-1] if waits else 0
        )

    def wake(self, loop: asyncio.AbstractEventLoop) -> None:
        """Messages were enqueued: make sure their reports will be served."""
        if self._pump_handle is None and not self._closed:
            self._pump_handle = loop.call_later(PUMP_INTERVAL_S, self._pump, loop)

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pump_handle = None
        if self._closed:
            return
        self.serve()
        if len(self.rd) > 0:  # messages still queued or in flight
            self._pump_handle = loop.call_later(PUMP_INTERVAL_S, self._pump, loop)

    def serve(self) -> None:
        """Serve the delivery reports that arrived (`poll(0)`, never blocks). Never raises: an
        error escaping here would stop the pump, and pending sends would wait forever."""
        try:
            self.rd.poll(0)
        except confluent_kafka.KafkaException as exc:
            self._failed(exc)
        except Exception:  # raised by a callback (a user's error_cb): keep serving reports
            log.exception("a librdkafka callback raised")

    def _failed(self, exc: confluent_kafka.KafkaException) -> None:
        """poll() or flush() raised: a fatal error, reported once (see the module's docstring)."""
        err = exc.args[0] if exc.args else None
        if not isinstance(err, confluent_kafka.KafkaError) or not err.fatal():
            log.warning("librdkafka producer: %s", from_librdkafka(exc))
            return
        if self.fatal is None:
            self.fatal = err
            log.error("producer unusable, create a new one: %s", from_librdkafka(err))
        # Nothing still queued or in flight can be delivered by this instance: fail it now rather
        # than after message.timeout.ms, so the sends waiting for it fail with `fatal` at once.
        self.rd.purge(in_queue=True, in_flight=True, blocking=False)

    def close(self, timeout_s: float) -> int:
        """Flush on the calling thread (a worker thread); returns messages left undelivered."""
        self._closed = True
        try:
            remaining: int = self.rd.flush(timeout_s)
        except confluent_kafka.KafkaException as exc:
            # A fatal error interrupted the flush (it is reported once): `_failed` keeps it and
            # purges what was left, so flushing again only serves the remaining failed reports.
            self._failed(exc)
            remaining = self.rd.flush(timeout_s)
        return remaining

    def cancel_pump(self) -> None:
        if self._pump_handle is not None:
            self._pump_handle.cancel()
            self._pump_handle = None
