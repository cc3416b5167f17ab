"""A null count for an array that may not be null, in any API the broker serves: the connection
is closed with one WARNING line, as Kafka closes a connection whose request does not parse, and
never a handler traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from klamm.protocol.messages import request_type
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire
from tests.protocol.protocol_helpers import NULL_ARRAY_CASES, minimal_body


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


Case = tuple[int, int, tuple[str, ...]]  # api key, version, path to the array


def _first_case_per_advertised_api(broker: EmbeddedBroker) -> list[Case]:
    """Per advertised API, its highest advertised version's first non-nullable array."""
    cases: dict[int, Case] = {}
    for key, version, path in NULL_ARRAY_CASES:
        advertised = broker.broker.advertised.get(key)
        if advertised is None or version != advertised[1] or key in cases:
            continue
        cases[key] = (key, version, path)
    return list(cases.values())


def test_every_advertised_api_closes_the_connection_with_one_line(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    cases = _first_case_per_advertised_api(broker)
    assert len(cases) >= 25
    for key, version, path in cases:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="klamm"), Wire(broker.bootstrap) as wire:
            body = minimal_body(request_type(key, version), path, -1)
            wire.send_raw(wire.header(key, version) + body)
            assert wire.is_closed(), f"api {key} v{version}: connection left open"
        lines = [r for r in caplog.records if r.name.startswith("klamm")]
        assert [r.levelno for r in lines] == [logging.WARNING], (key, version, lines)
        assert "malformed request" in lines[0].getMessage()
        assert f"'{path[-1]}'" in lines[0].getMessage()
        assert lines[0].exc_info is None  # one line, no traceback
    with Wire(broker.bootstrap) as wire:  # and everyone else is still served
        assert wire.request(3, 1, topics=[]).brokers[0].port == broker.port
