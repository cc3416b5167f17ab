"""pytest fixtures for projects that test Kafka code against klamm.

Enable with `pytest_plugins = ["klamm.testing.pytest_plugin"]` in a conftest.py.

    kafka_broker  a session-wide EmbeddedBroker (use unique topic and group names per test)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from klamm.testing.embedded import EmbeddedBroker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as broker:
        yield broker
