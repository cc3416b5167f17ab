"""SaslHandshake (17) v0-1 and SaslAuthenticate (36) v0-2.

The exchange itself is `klamm.broker.auth.SaslAuthenticator`, one per connection on a SASL_*
listener (`ctx.session.sasl`); these handlers only translate between it and the wire. When the
exchange fails the response still goes out (the client shows its message), then the connection
closes it (`KafkaConnection` checks `sasl.failure` after each response), as Kafka does.

On a listener without SASL, or after a successful login, both APIs answer ILLEGAL_SASL_STATE
and keep the connection, like Kafka's KafkaApis. klamm does not re-authenticate (KIP-368):
`session_lifetime_ms` is 0, Kafka's value when connections.max.reauth.ms is unset.
"""

from __future__ import annotations

import logging
from typing import Any

from klamm.broker.auth import AuthenticationFailed, IllegalSaslState
from klamm.broker.context import RequestContext
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode

log = logging.getLogger("klamm.broker.auth")

_AFTER_SUCCESS = "SaslAuthenticate request received after successful authentication"


def handle_sasl_handshake(ctx: RequestContext, request: Any) -> Any:
    sasl = ctx.session.sasl
    if sasl is None:
        return ctx.response(error_code=ErrorCode.illegal_sasl_state, mechanisms=())
    error = sasl.handshake(ctx.version, request.mechanism)
    return ctx.response(error_code=error, mechanisms=tuple(sasl.enabled))


def handle_sasl_authenticate(ctx: RequestContext, request: Any) -> Any:
    sasl = ctx.session.sasl
    if sasl is None:
        return _auth_response(ctx, ErrorCode.illegal_sasl_state, _AFTER_SUCCESS)
    try:
        token = sasl.authenticate(bytes(request.auth_bytes))
    except IllegalSaslState as exc:
        return _auth_response(ctx, ErrorCode.illegal_sasl_state, str(exc))
    except AuthenticationFailed as exc:
        return _auth_response(ctx, ErrorCode.sasl_authentication_failed, str(exc))
    if sasl.complete:
        ctx.session.authenticated = True
        ctx.session.principal = f"User:{sasl.principal}"
        log.info(
            "%s: authenticated as %s with %s",
            ctx.session.peer,
            ctx.session.principal,
            sasl.mechanism,
        )
    return ctx.response(
        error_code=ErrorCode.none, error_message=None, auth_bytes=token, session_lifetime=0
    )


def _auth_response(ctx: RequestContext, error: ErrorCode, message: str) -> Any:
    return ctx.response(error_code=error, error_message=message, auth_bytes=b"", session_lifetime=0)


HANDLERS = {
    ApiKey.SASL_HANDSHAKE: handle_sasl_handshake,
    ApiKey.SASL_AUTHENTICATE: handle_sasl_authenticate,
}
