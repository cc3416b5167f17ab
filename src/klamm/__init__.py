"""klamm: Kafka for Python people."""

from __future__ import annotations

from klamm.client import *  # noqa: F403  - the client's public names are klamm's
from klamm.client import __all__ as _client_all

__version__ = "0.1.0"

__all__ = [*_client_all, "__version__"]
