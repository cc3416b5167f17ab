"""Fixtures: a real Schema Registry (klamm.schema.server) on the session's klamm broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from klamm.schema.app import build_app
from klamm.schema.log import MemoryLog
from klamm.schema.service import Registry
from klamm.schema.state import RegistryState
from tests.schema.schema_helpers import RunningRegistry


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
