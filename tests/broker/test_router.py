"""The router refuses to start with a handler ApiVersions could not advertise."""

from __future__ import annotations

from typing import Any

import pytest

from klamm.broker.router import Handler, advertised_versions, load_handlers
from klamm.protocol.api_versions import SUPPORTED, ApiKey


def _handler(ctx: Any, request: Any) -> None:
    return None


def test_every_loaded_handler_is_advertised() -> None:
    routes = load_handlers()
    assert set(advertised_versions(routes)) == set(routes)


def test_a_handler_without_a_supported_range_fails_loudly() -> None:
    unsupported = 1000  # no Kafka API has this key
    assert unsupported not in SUPPORTED
    routes: dict[int, Handler] = {ApiKey.METADATA: _handler, unsupported: _handler}
    with pytest.raises(RuntimeError, match="1000"):
        advertised_versions(routes)
