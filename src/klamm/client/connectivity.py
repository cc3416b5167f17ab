"""KafkaJS's `connect()` reaches the cluster, so a wrong address or a refused login fails there,
not later as a timeout on the first send.

librdkafka connects lazily and reports a refused login only on its error callback; the request
that needed the connection just waits out its timeout. `AuthWatch` is that callback: it keeps the
last authentication failure. `reach_cluster` fetches metadata in short steps and serves the
error callbacks between them, so a refused login ends the wait at once with AuthenticationError.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import confluent_kafka

from klamm.client.errors import from_librdkafka, is_authentication_error

T = TypeVar("T")

# How long connect() keeps trying to reach the cluster: about what KafkaJS's connect() spends
# retrying with its default retry policy before it gives up.
CONNECT_TIMEOUT_S = 10.0
# One metadata attempt waits at most this long before error callbacks are served again.
_STEP_S = 0.2


class AuthWatch:
    """librdkafka `error_cb` that remembers authentication failures (and forwards every error to
    a callback the user configured, if any). Called on whichever thread serves poll()."""

    def __init__(self, chained: Callable[[Any], None] | None = None) -> None:
        self.error: Any = None
        self._chained = chained

    def __call__(self, err: Any) -> None:
        if is_authentication_error(err):
            self.error = err
        if self._chained is not None:
            self._chained(err)


def create_client(
    factory: Callable[[dict[str, Any]], T], conf: Mapping[str, Any]
) -> tuple[T, AuthWatch]:
    """A librdkafka client (`confluent_kafka.Producer`, `Consumer` or `AdminClient`) made from
    a copy of `conf` with an AuthWatch as its error callback; a refused config is a klamm error."""
    conf = dict(conf)
    watch = AuthWatch(conf.get("error_cb"))
    conf["error_cb"] = watch
    try:
        return factory(conf), watch
    except confluent_kafka.KafkaException as exc:
        raise from_librdkafka(exc) from None


def reach_cluster(rd: Any, watch: AuthWatch, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Blocking (run it in a worker thread): return once the cluster answered a metadata request;
    raise AuthenticationError as soon as a login is refused, else the last error at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        step = min(_STEP_S, max(deadline - time.monotonic(), 0.01))
        try:
            rd.list_topics(timeout=step)
            return
        except confluent_kafka.KafkaException as exc:
            try:
                rd.poll(0)  # serves error_cb, where refused logins are reported
            except confluent_kafka.KafkaException as fatal:  # reported once, out of poll()
                raise from_librdkafka(fatal) from None
            if watch.error is not None:
                raise from_librdkafka(watch.error) from None
            if time.monotonic() >= deadline:
                raise from_librdkafka(exc) from None
