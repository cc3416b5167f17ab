"""Dispatch decoded requests to handler modules, and answer ApiVersions.

A handler module exposes `HANDLERS: dict[int, Handler]`. A handler takes the request context and
the kio request body and returns the kio response body, or None for no response (Produce acks=0).
It may be a plain function or a coroutine function; coroutines run as tasks, and the connection
writes responses back in request order whatever order they finish in.

Handlers are listed in `HANDLER_MODULES`; ApiVersions advertises exactly the APIs that have a
handler, with the version ranges of `klamm.protocol.api_versions.SUPPORTED`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from klamm.broker.context import RequestContext
from klamm.protocol.api_versions import SUPPORTED, ApiKey
from klamm.protocol.errors import ErrorCode

Handler = Callable[[RequestContext, Any], Any | Awaitable[Any]]

HANDLER_MODULES = (
    "klamm.broker.handlers.metadata",
    "klamm.broker.handlers.produce",
    "klamm.broker.handlers.fetch",
    "klamm.broker.handlers.list_offsets",
    "klamm.broker.handlers.topics",
    "klamm.broker.handlers.configs",
    "klamm.broker.handlers.log_dirs",
    "klamm.broker.handlers.topic_partitions",
    "klamm.broker.handlers.replicas",
    "klamm.broker.handlers.groups",
    "klamm.broker.handlers.transactions",
    "klamm.broker.handlers.sasl",
    "klamm.broker.handlers.acls",
)

# KIP-511: ClientSoftwareName/Version must match this, else INVALID_REQUEST.
_SOFTWARE_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$")


def load_handlers() -> dict[int, Handler]:
    routes: dict[int, Handler] = {ApiKey.API_VERSIONS: handle_api_versions}
    for name in HANDLER_MODULES:
        routes.update(importlib.import_module(name).HANDLERS)
    return routes


def advertised_versions(routes: dict[int, Handler]) -> dict[int, tuple[int, int]]:
    """The version range ApiVersions advertises for each routed API.

    A handler whose API has no SUPPORTED range would be unreachable (clients only send what is
    advertised) and untested: that is a contributor's mistake, so the broker refuses to start.
    """
    missing = sorted(key for key in routes if key not in SUPPORTED)
    if missing:
        names = ", ".join(_api_name(key) for key in missing)
        raise RuntimeError(
            f"handlers without a SUPPORTED version range in klamm.protocol.api_versions: {names}"
        )
    return {key: (r.min, r.max) for key, r in SUPPORTED.items() if key in routes}


def _api_name(key: int) -> str:
    names = [name for name, value in vars(ApiKey).items() if value == key and name.isupper()]
    return f"{names[0]} ({key})" if names else str(key)


def handle_api_versions(ctx: RequestContext, request: Any) -> Any:
    error = ErrorCode.none
    name = getattr(request, "client_software_name", None)
    version = getattr(request, "client_software_version", None)
    if name is not None and version is not None:
        if not (_SOFTWARE_RE.match(name) and _SOFTWARE_RE.match(version)):
            error = ErrorCode.invalid_request
        ctx.session.client_software = f"{name}/{version}"
    return ctx.response(
        error_code=error,
        api_keys=[
            {"api_key": key, "min_version": lo, "max_version": hi}
            for key, (lo, hi) in sorted(ctx.broker.advertised.items())
        ],
        throttle_time=0,
    )
