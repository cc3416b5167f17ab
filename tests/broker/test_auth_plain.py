"""SASL/PLAIN server state machine. No sockets."""

from __future__ import annotations

import pytest

from klamm.broker.auth import AuthenticationFailed, CredentialStore, IllegalSaslState, PlainServer
from klamm.broker.auth.plain import PlainState


@pytest.fixture(scope="module")
def store() -> CredentialStore:
    return CredentialStore({"alice": "secret", "bob": "pä:ss wörd"})


@pytest.mark.parametrize(
    "token,principal",
    [
        (b"\x00alice\x00secret", "alice"),
        (b"alice\x00alice\x00secret", "alice"),
        ("\x00bob\x00pä:ss wörd".encode(), "bob"),
    ],
)
def test_success(store: CredentialStore, token: bytes, principal: str) -> None:
    server = PlainServer(store)
    assert server.evaluate(token) == b""
    assert server.complete and server.principal == principal


@pytest.mark.parametrize(
    "token,match",
    [
        (b"\x00alice\x00wrong", "Invalid username or password"),
        (b"\x00mallory\x00secret", "Invalid username or password"),
        (b"\x00alice", "expected 3 tokens"),
        (b"\x00a\x00b\x00c", "expected 3 tokens"),
        (b"\x00\x00secret", "username not specified"),
        (b"\x00alice\x00", "password not specified"),
        (b"bob\x00alice\x00secret", "authorization id"),
        (b"\x00\xff\x00x", "UTF-8"),
    ],
)
def test_failures(store: CredentialStore, token: bytes, match: str) -> None:
    server = PlainServer(store)
    with pytest.raises(AuthenticationFailed, match=match) as info:
        server.evaluate(token)
    assert "secret" not in str(info.value)
    assert server.state is PlainState.FAILED and server.principal is None
    with pytest.raises(IllegalSaslState):
        server.evaluate(b"\x00alice\x00secret")


def test_one_message_only(store: CredentialStore) -> None:
    server = PlainServer(store)
    server.evaluate(b"\x00alice\x00secret")
    with pytest.raises(IllegalSaslState):
        server.evaluate(b"\x00alice\x00secret")
    assert server.complete
