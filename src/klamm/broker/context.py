"""What a request handler sees: the broker, the request header, and who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from klamm.protocol.build import build
from klamm.protocol.messages import RequestHeader, response_type

if TYPE_CHECKING:
    from klamm.broker.auth import SaslAuthenticator
    from klamm.broker.node import Broker


@dataclass(slots=True)
class Session:
    """Per-connection state that outlives one request (authentication, client identity)."""

    peer: str
    client_software: str | None = None
    principal: str | None = None
    authenticated: bool = True
    # The SASL exchange on a SASL_* listener (None on PLAINTEXT/SSL): until it completes only
    # ApiVersions, SaslHandshake and SaslAuthenticate are served (klamm.broker.auth).
    sasl: SaslAuthenticator | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RequestContext:
    broker: Broker
    header: RequestHeader
    session: Session

    @property
    def version(self) -> int:
        return self.header.api_version

    def response(self, /, **fields: Any) -> Any:
        """The response entity for this request's API and version, from plain values."""
        cls = response_type(self.header.api_key, self.header.api_version)
        return build(cls, **fields)

    def response_cls(self) -> Any:
        return response_type(self.header.api_key, self.header.api_version)
