"""SCRAM-SHA-256/512 server state machine: RFC 7677's vector, a real client exchange, and every
way a client message can be wrong. No sockets."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from klamm.broker.auth import AuthenticationFailed, CredentialStore, IllegalSaslState, ScramServer
from klamm.broker.auth.credentials import derive
from klamm.broker.auth.scram import ScramState

# RFC 7677 §3: user "user", password "pencil".
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

HASH = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


def rfc_server() -> ScramServer:
    store = CredentialStore()
    store.add_scram("user", "SCRAM-SHA-256", derive("SCRAM-SHA-256", "pencil", 4096, RFC_SALT))
    return ScramServer("SCRAM-SHA-256", store, nonce=lambda: RFC_SERVER_NONCE)


def test_rfc7677_sha256_vector() -> None:
    server = rfc_server()
    assert server.evaluate(RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    assert server.state is ScramState.RECEIVE_CLIENT_FINAL
    assert server.evaluate(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    assert server.complete and server.principal == "user"


def test_rfc7677_tampered_proof_fails() -> None:
    server = rfc_server()
    server.evaluate(RFC_CLIENT_FIRST)
    bad = RFC_CLIENT_FINAL.replace(b"p=dHzb", b"p=dHzc")
    with pytest.raises(AuthenticationFailed, match="Invalid user credentials"):
        server.evaluate(bad)
    assert server.state is ScramState.FAILED and server.principal is None


class Client:
    """A minimal SCRAM client (RFC 5802 §3), to drive the server as Kafka clients do."""

    def __init__(self, mechanism: str, user: str, password: str, authzid: str = "") -> None:
        self.hash = HASH[mechanism]
        self.password = password
        self.gs2 = f"n,{'a=' + authzid if authzid else ''},"
        self.bare = f"n={user.replace('=', '=3D').replace(',', '=2C')},r=clientnonce123"

    def first(self) -> bytes:
        return (self.gs2 + self.bare).encode()

    def final(
        self, server_first: bytes, *, binding: str | None = None, nonce_prefix: str = ""
    ) -> bytes:
        fields = dict(f.split("=", 1) for f in server_first.decode().split(","))
        salted = hashlib.pbkdf2_hmac(
            self.hash, self.password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
        )
        client_key = hmac.digest(salted, b"Client Key", self.hash)
        stored_key = hashlib.new(self.hash, client_key).digest()
        cbind = binding or base64.b64encode(self.gs2.encode()).decode()
        without_proof = f"c={cbind},r={nonce_prefix}{fields['r']}"
        auth = f"{self.bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.digest(stored_key, auth, self.hash)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self.server_signature = hmac.digest(
            hmac.digest(salted, b"Server Key", self.hash), auth, self.hash
        )
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


@pytest.fixture(scope="module")
def store() -> CredentialStore:
    return CredentialStore({"alice": "secret", "we,ird=name": "pw"})


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("user,password", [("alice", "secret"), ("we,ird=name", "pw")])
def test_client_exchange(store: CredentialStore, mechanism: str, user: str, password: str) -> None:
    server = ScramServer(mechanism, store)
    client = Client(mechanism, user, password)
    server_first = server.evaluate(client.first())
    assert server_first.startswith(b"r=clientnonce123")  # the server nonce is appended
    salt_field = server_first.split(b",")[1]
    assert len(base64.b64decode(salt_field[2:])) == 32
    assert server_first.endswith(b",i=4096")
    server_final = server.evaluate(client.final(server_first))
    assert server_final == b"v=" + base64.b64encode(client.server_signature)
    assert server.principal == user


def test_salts_differ_per_user_and_hash(store: CredentialStore) -> None:
    a256, a512 = store.scram("alice", "SCRAM-SHA-256"), store.scram("alice", "SCRAM-SHA-512")
    assert a256 is not None and a512 is not None and a256.salt != a512.salt
    assert "secret" not in repr(a256)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_password_and_unknown_user_get_the_same_message(
    store: CredentialStore, mechanism: str
) -> None:
    server = ScramServer(mechanism, store)
    client = Client(mechanism, "alice", "wrong")
    with pytest.raises(AuthenticationFailed) as wrong:
        server.evaluate(client.final(server.evaluate(client.first())))
    server = ScramServer(mechanism, store)
    with pytest.raises(AuthenticationFailed) as unknown:
        server.evaluate(Client(mechanism, "mallory", "x").first())
    assert str(wrong.value) == str(unknown.value)
    assert str(unknown.value) == "Authentication failed: Invalid user credentials"
    assert server.state is ScramState.FAILED


def test_nonce_must_match(store: CredentialStore) -> None:
    server = ScramServer("SCRAM-SHA-256", store)
    client = Client("SCRAM-SHA-256", "alice", "secret")
    server_first = server.evaluate(client.first())
    other = server_first.replace(b"r=clientnonce123", b"r=clientnonce124")
    with pytest.raises(AuthenticationFailed, match="nonce"):
        server.evaluate(client.final(other))


def test_old_librdkafka_doubled_client_nonce_is_accepted(store: CredentialStore) -> None:
    """librdkafka < 2.6.1 (Debian's kcat) sends r=cnonce+cnonce+snonce (librdkafka#4895)."""
    server = ScramServer("SCRAM-SHA-256", store)
    client = Client("SCRAM-SHA-256", "alice", "secret")
    server_first = server.evaluate(client.first())
    server.evaluate(client.final(server_first, nonce_prefix="clientnonce123"))
    assert server.complete
    # ...but only that exact form: any other prefix is refused.
    server = ScramServer("SCRAM-SHA-256", store)
    server_first = server.evaluate(client.first())
    with pytest.raises(AuthenticationFailed, match="nonce"):
        server.evaluate(client.final(server_first, nonce_prefix="x"))


def test_channel_binding_must_echo_the_gs2_header(store: CredentialStore) -> None:
    server = ScramServer("SCRAM-SHA-256", store)
    client = Client("SCRAM-SHA-256", "alice", "secret")
    server_first = server.evaluate(client.first())
    with pytest.raises(AuthenticationFailed, match="channel binding"):
        server.evaluate(client.final(server_first, binding="eSws"))  # "y,," instead of "n,,"


def test_authzid_equal_to_user_is_accepted_and_different_is_refused(
    store: CredentialStore,
) -> None:
    server = ScramServer("SCRAM-SHA-256", store)
    client = Client("SCRAM-SHA-256", "alice", "secret", authzid="alice")
    server.evaluate(client.final(server.evaluate(client.first())))
    assert server.complete
    server = ScramServer("SCRAM-SHA-256", store)
    with pytest.raises(AuthenticationFailed, match="authorization id"):
        server.evaluate(Client("SCRAM-SHA-256", "alice", "secret", authzid="bob").first())


@pytest.mark.parametrize(
    "message,match",
    [
        (b"p=tls-unique,,n=alice,r=abc", "channel binding"),
        (b"x,,n=alice,r=abc", "gs2"),
        (b"n,,m=ext,n=alice,r=abc", "mandatory"),
        (b"n,,n=alice", "first message"),
        (b"n,,n=al=2Xce,r=abc", "user name"),
        (b"n,,n=alice,r=", "nonce"),
        (b"n,,\xff\xfe", "UTF-8"),
        (b"", "first message"),
    ],
)
def test_malformed_client_first(store: CredentialStore, message: bytes, match: str) -> None:
    server = ScramServer("SCRAM-SHA-256", store)
    with pytest.raises(AuthenticationFailed, match=match):
        server.evaluate(message)
    assert server.state is ScramState.FAILED


@pytest.mark.parametrize(
    "message", [b"c=biws,r=x", b"r=x,c=biws,p=AAAA", b"c=biws,r=x,p=!!!", b"garbage"]
)
def test_malformed_client_final(store: CredentialStore, message: bytes) -> None:
    server = ScramServer("SCRAM-SHA-256", store)
    server.evaluate(Client("SCRAM-SHA-256", "alice", "secret").first())
    with pytest.raises(AuthenticationFailed):
        server.evaluate(message)
    assert server.state is ScramState.FAILED


def test_no_message_after_the_end() -> None:
    server = rfc_server()
    server.evaluate(RFC_CLIENT_FIRST)
    server.evaluate(RFC_CLIENT_FINAL)
    with pytest.raises(IllegalSaslState):
        server.evaluate(RFC_CLIENT_FINAL)
    assert server.complete  # a stray message does not undo a finished login


def test_too_few_iterations_are_refused() -> None:
    with pytest.raises(ValueError, match="4096"):
        CredentialStore({"a": "b"}, iterations=1000)
