"""Public test helpers: a real broker for tests, a fake clock, and a pytest plugin.

from klamm.testing import EmbeddedBroker, FakeClock

with EmbeddedBroker() as broker:
    producer = Producer({"bootstrap.servers": broker.bootstrap})

clock = FakeClock()  # pass it wherever klamm takes `now_ms`; time moves with clock.advance(ms)
"""

from klamm.testing.clock import FakeClock
from klamm.testing.embedded import EmbeddedBroker

__all__ = ["EmbeddedBroker", "FakeClock"]
