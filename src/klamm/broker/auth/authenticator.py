"""A connection's SASL exchange, as Kafka's SaslServerAuthenticator runs it (KIP-43, KIP-152).

States (each with the states it may follow):

    HANDSHAKE_OR_VERSIONS  initial: ApiVersions or SaslHandshake may come
    HANDSHAKE              <- HANDSHAKE_OR_VERSIONS: ApiVersions answered; SaslHandshake next
                              (ApiVersions again is allowed: a client retries it at a lower
                              version after UNSUPPORTED_VERSION)
    AUTHENTICATE           <- HANDSHAKE_OR_VERSIONS, HANDSHAKE: SaslHandshake v1 accepted; the
                              mechanism's tokens arrive in SaslAuthenticate requests
    AUTHENTICATE_RAW       <- HANDSHAKE_OR_VERSIONS, HANDSHAKE: SaslHandshake v0 accepted; the
                              tokens arrive as bare length-prefixed frames, with no request
                              header, and the replies go back the same way
    COMPLETE               <- AUTHENTICATE, AUTHENTICATE_RAW: `principal` is set; every API open
    FAILED                 <- any state but COMPLETE: the connection is closed once the error
                              response (if any) is written; `failure` says why, for the log

Any request other than ApiVersions/SaslHandshake before the handshake, or other than
SaslAuthenticate after it, fails the exchange: Kafka closes such connections (a client with
the wrong security.protocol, or not a Kafka client at all). Pure: no sockets, no clock; the
connection asks `check_request` before decoding a body and feeds tokens to `authenticate`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Protocol

from klamm.broker.auth.credentials import HASHES, CredentialStore
from klamm.broker.auth.errors import AuthenticationFailed, IllegalSaslState
from klamm.broker.auth.plain import PlainServer
from klamm.broker.auth.scram import ScramServer, random_nonce
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode

__all__ = ["MECHANISMS", "SaslAuthenticator", "SaslState"]

# Every mechanism klamm implements, in Kafka's spelling. (GSSAPI and OAUTHBEARER are not.)
MECHANISMS: tuple[str, ...] = ("PLAIN", *HASHES)

_API_NAMES = {v: k for k, v in vars(ApiKey).items() if isinstance(v, int)}


class SaslState(enum.Enum):
    HANDSHAKE_OR_VERSIONS = "waiting for ApiVersions or SaslHandshake"
    HANDSHAKE = "waiting for SaslHandshake"
    AUTHENTICATE = "waiting for SaslAuthenticate"
    AUTHENTICATE_RAW = "waiting for a raw SASL token (SaslHandshake v0)"
    COMPLETE = "authenticated"
    FAILED = "authentication failed; closing"


_S = SaslState
# Each state -> the states it may follow (the table of the module docstring).
_PREVIOUS: dict[SaslState, frozenset[SaslState]] = {
    _S.HANDSHAKE_OR_VERSIONS: frozenset(),
    _S.HANDSHAKE: frozenset({_S.HANDSHAKE_OR_VERSIONS, _S.HANDSHAKE}),
    _S.AUTHENTICATE: frozenset({_S.HANDSHAKE_OR_VERSIONS, _S.HANDSHAKE}),
    _S.AUTHENTICATE_RAW: frozenset({_S.HANDSHAKE_OR_VERSIONS, _S.HANDSHAKE}),
    _S.COMPLETE: frozenset({_S.AUTHENTICATE, _S.AUTHENTICATE_RAW}),
    _S.FAILED: frozenset(set(_S) - {_S.COMPLETE, _S.FAILED}),
}


class _Mechanism(Protocol):
    principal: str | None

    @property
    def complete(self) -> bool: ...

    def evaluate(self, token: bytes) -> bytes: ...


class SaslAuthenticator:
    def __init__(
        self,
        enabled: Sequence[str],
        store: CredentialStore,
        nonce: Callable[[], str] = random_nonce,
    ) -> None:
        unknown = set(enabled) - set(MECHANISMS)
        if unknown:
            raise ValueError(f"unsupported SASL mechanisms: {sorted(unknown)}")
        self.enabled = list(enabled)
        self._store = store
        self._nonce = nonce
        self.state = SaslState.HANDSHAKE_OR_VERSIONS
        self.mechanism: str | None = None
        self.principal: str | None = None
        self.failure: str | None = None  # why the exchange failed, for the broker's log
        self._server: _Mechanism | None = None

    def _set(self, state: SaslState) -> None:
        assert self.state in _PREVIOUS[state], f"SASL: {self.state.name} -> {state.name}"
        self.state = state

    def fail(self, reason: str) -> None:
        if self.state in _PREVIOUS[SaslState.FAILED]:
            self._set(SaslState.FAILED)
            self.failure = reason

    @property
    def complete(self) -> bool:
        return self.state is SaslState.COMPLETE

    @property
    def expects_raw_token(self) -> bool:
        return self.state is SaslState.AUTHENTICATE_RAW

    # --- requests -----------------------------------------------------------------------------

    def check_request(self, api_key: int) -> str | None:
        """Before a request is decoded: None if it may proceed, else why the connection closes."""
        state = self.state
        if state is SaslState.COMPLETE:
            return None
        if state in (SaslState.HANDSHAKE_OR_VERSIONS, SaslState.HANDSHAKE):
            if api_key in (ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE):
                return None
            phase = "handshake"
        elif state is SaslState.AUTHENTICATE:
            if api_key == ApiKey.SASL_AUTHENTICATE:
                return None
            phase = "authentication"
        else:
            phase = "authentication"
        name = _API_NAMES.get(api_key, str(api_key))
        reason = (
            f"Unexpected Kafka request of type {name} during SASL {phase} (is the client "
            "configured with the right security.protocol?)"
        )
        self.fail(reason)
        return reason

    def api_versions_answered(self) -> None:
        if self.state is SaslState.HANDSHAKE_OR_VERSIONS:
            self._set(SaslState.HANDSHAKE)

    def handshake(self, version: int, mechanism: str) -> ErrorCode:
        """SaslHandshake: the error code to answer with; the enabled list goes with it."""
        if self.state not in (SaslState.HANDSHAKE_OR_VERSIONS, SaslState.HANDSHAKE):
            # After success Kafka answers ILLEGAL_SASL_STATE and keeps the connection.
            if self.state is not SaslState.COMPLETE:
                self.fail(f"SaslHandshake in state {self.state.name}")
            return ErrorCode.illegal_sasl_state
        if mechanism not in self.enabled:
            self.fail(
                f"client asked for SASL mechanism {mechanism!r}; enabled: {', '.join(self.enabled)}"
            )
            return ErrorCode.unsupported_sasl_mechanism
        self.mechanism = mechanism
        if mechanism == "PLAIN":
            self._server = PlainServer(self._store)
        else:
            self._server = ScramServer(mechanism, self._store, self._nonce)
        self._set(SaslState.AUTHENTICATE if version >= 1 else SaslState.AUTHENTICATE_RAW)
        return ErrorCode.none

    def authenticate(self, token: bytes) -> bytes:
        """One client token in, the server's token out. Raises AuthenticationFailed (the
        message is safe to show the client); the exchange is then FAILED."""
        if self.state not in (SaslState.AUTHENTICATE, SaslState.AUTHENTICATE_RAW):
            if self.state is SaslState.COMPLETE:
                raise IllegalSaslState(
                    "SaslAuthenticate request received after successful authentication"
                )
            self.fail(f"SASL token in state {self.state.name}")
            raise IllegalSaslState(f"Unexpected SASL token in state {self.state.name}")
        assert self._server is not None  # set by handshake()
        try:
            reply = self._server.evaluate(token)
        except AuthenticationFailed as exc:
            self.fail(f"{self.mechanism}: {exc}")
            raise
        if self._server.complete:
            self.principal = self._server.principal
            self._server = None
            self._set(SaslState.COMPLETE)
        return reply
