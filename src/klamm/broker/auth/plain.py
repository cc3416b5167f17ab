"""SASL/PLAIN server (RFC 4616): one client message, no challenge.

    message = [authzid] NUL authcid NUL passwd        (UTF-8)

States (each with the states it may follow):

    RECEIVE_RESPONSE   initial: waiting for the one client message
    COMPLETE           <- RECEIVE_RESPONSE: credentials checked; `principal` is set
    FAILED             <- RECEIVE_RESPONSE: any error; nothing more is accepted

Error texts follow Kafka's PlainSaslServer so clients show familiar messages; none says whether
the user exists. PLAIN sends the password in clear: use it over TLS (SASL_SSL) outside tests.
"""

from __future__ import annotations

import enum

from klamm.broker.auth.credentials import CredentialStore
from klamm.broker.auth.errors import AuthenticationFailed, IllegalSaslState

__all__ = ["PlainServer", "PlainState"]


class PlainState(enum.Enum):
    RECEIVE_RESPONSE = "waiting for the one client message"
    COMPLETE = "credentials checked"
    FAILED = "the exchange failed"


# Each state -> the states it may follow (the table of the module docstring).
_PREVIOUS: dict[PlainState, frozenset[PlainState]] = {
    PlainState.RECEIVE_RESPONSE: frozenset(),
    PlainState.COMPLETE: frozenset({PlainState.RECEIVE_RESPONSE}),
    PlainState.FAILED: frozenset({PlainState.RECEIVE_RESPONSE}),
}


class PlainServer:
    mechanism = "PLAIN"

    def __init__(self, store: CredentialStore) -> None:
        self._store = store
        self.state = PlainState.RECEIVE_RESPONSE
        self.principal: str | None = None

    @property
    def complete(self) -> bool:
        return self.state is PlainState.COMPLETE

    def _set(self, state: PlainState) -> None:
        assert self.state in _PREVIOUS[state], f"PLAIN: {self.state.name} -> {state.name}"
        self.state = state

    def evaluate(self, token: bytes) -> bytes:
        """The client's message in, the (empty) server reply out; raises AuthenticationFailed."""
        if self.state is not PlainState.RECEIVE_RESPONSE:
            raise IllegalSaslState(f"Unexpected SASL/PLAIN message in state {self.state.name}")
        try:
            self.principal = self._check(token)
        except AuthenticationFailed:
            self._set(PlainState.FAILED)
            raise
        self._set(PlainState.COMPLETE)
        return b""

    def _check(self, token: bytes) -> str:
        parts = token.split(b"\x00")
        if len(parts) != 3:
            raise AuthenticationFailed(
                f"Invalid SASL/PLAIN response: expected 3 tokens, got {len(parts)}"
            )
        try:
            authzid, username, password = (p.decode() for p in parts)
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid SASL/PLAIN response: not UTF-8") from None
        if not username:
            raise AuthenticationFailed("Authentication failed: username not specified")
        if not password:
            raise AuthenticationFailed("Authentication failed: password not specified")
        if not self._store.check_password(username, password):
            raise AuthenticationFailed("Authentication failed: Invalid username or password")
        if authzid and authzid != username:
            raise AuthenticationFailed(
                "Authentication failed: Client requested an "
                "authorization id that is different from username"
            )
        return username
