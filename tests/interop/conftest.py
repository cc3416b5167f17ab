"""Fixtures for the interop suite: real third-party clients against klamm's broker.

Every test here talks to the session-wide `kafka_broker` (thread mode) through an unchanged
client: confluent-kafka (librdkafka), kafka-python, aiokafka, kcat and KafkaJS (node scripts in
`js/`). Topics are named per test with the `unique` fixture. Helpers are in interop_helpers.py.

External tools: `kcat` and `node` (+ `js/node_modules`) fail the test under CI=true when missing
(.ci/run installs them) and skip it otherwise.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from klamm.testing import EmbeddedBroker
from tests.interop.auth_support import FAST_GROUPS, Certs, make_certs, sasl_settings, tls_settings
from tests.interop.interop_helpers import (
    JS_DIR,
    NodeRunner,
    create_topic,
    missing_tool,
)


@pytest.fixture(scope="session")
def kcat() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        missing_tool("kcat is not installed (apt-get install -y kcat)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def node() -> NodeRunner:
    path = shutil.which("node")
    if path is None:
        missing_tool("node is not installed")
    if not (JS_DIR / "node_modules" / "kafkajs").is_dir():
        missing_tool(f"KafkaJS is not installed: run `npm ci` in {JS_DIR}")
    assert path is not None
    return NodeRunner(path)


@pytest.fixture
def bootstrap(kafka_broker: Any) -> str:
    return str(kafka_broker.bootstrap)


@pytest.fixture
def data_dir(kafka_broker: Any) -> Path:
    return Path(kafka_broker.data_dir)


@pytest.fixture
def topic_factory(bootstrap: str, unique: str) -> Iterator[Callable[..., str]]:
    counter = iter(range(1000))

    def make(partitions: int = 1, prefix: str = "t", **configs: str) -> str:
        return create_topic(bootstrap, f"{prefix}-{unique}-{next(counter)}", partitions, **configs)

    yield make


# --- authentication: brokers with SASL and TLS listeners (module scope: one set per module) ---


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(**sasl_settings()) as broker:
        yield broker


@pytest.fixture(scope="module")
def sasl_ssl_broker(certs: Certs) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(**sasl_settings("SASL_SSL"), **tls_settings(certs)) as broker:
        yield broker


@pytest.fixture(scope="module")
def ssl_broker(certs: Certs) -> Iterator[EmbeddedBroker]:
    settings = {"security_protocol": "SSL", **FAST_GROUPS}
    with EmbeddedBroker(**settings, **tls_settings(certs)) as broker:
        yield broker
