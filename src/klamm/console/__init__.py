"""klamm's web console: topics, messages, consumer groups and lag of any Kafka cluster.

It talks to the cluster only through the Kafka protocol, with klamm's own client
(tests/test_layering.py): the same console serves beside a klamm broker (`klamm broker
--console`) and against Apache Kafka or a managed cluster (`klamm console --bootstrap`).
"""

from __future__ import annotations

from klamm.console.app import create_app
from klamm.console.config import ConsoleConfig, ConsoleConfigError
from klamm.console.server import ConsoleServer

__all__ = ["ConsoleConfig", "ConsoleConfigError", "ConsoleServer", "create_app"]
