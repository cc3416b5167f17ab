"""Public test helpers: a real broker for tests, and a pytest plugin.

from klamm.testing import EmbeddedBroker

with EmbeddedBroker() as broker:
    producer = Producer({"bootstrap.servers": broker.bootstrap})
"""

from klamm.testing.embedded import EmbeddedBroker

__all__ = ["EmbeddedBroker"]
