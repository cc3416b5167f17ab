"""SASL/SCRAM server (RFC 5802, RFC 7677), as Kafka speaks it (KIP-84).

    client-first  n,[a=authzid],n=user,r=cnonce[,ext...]
    server-first  r=cnonce+snonce,s=base64(salt),i=iterations      (the server nonce is appended)
    client-final  c=base64(gs2-header),r=cnonce+snonce[,ext...],p=base64(ClientProof)
    server-final  v=base64(ServerSignature)

States (each with the states it may follow):

    RECEIVE_CLIENT_FIRST   initial
    RECEIVE_CLIENT_FINAL   <- RECEIVE_CLIENT_FIRST: server-first sent, credential looked up
    COMPLETE               <- RECEIVE_CLIENT_FINAL: proof verified, server-final sent
    FAILED                 <- RECEIVE_CLIENT_FIRST, RECEIVE_CLIENT_FINAL: any error

Like Kafka's ScramSaslServer, an unknown user fails at client-first, with the same text a wrong
password gets at client-final. Extensions (Kafka's `tokenauth`) are ignored: klamm has no
delegation tokens, so a token id is just a user name that does not exist. Channel binding
(`p=`) is refused: Kafka clients never ask for it.

Pure: the server nonce comes from an injected function (tests pin it to RFC 7677's vector).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
from collections.abc import Callable

from klamm.broker.auth.credentials import HASHES, CredentialStore, ScramCredential
from klamm.broker.auth.errors import AuthenticationFailed, IllegalSaslState

__all__ = ["ScramServer", "ScramState", "random_nonce"]

# What a failed login is told whatever the cause (Kafka: "invalid credentials"): the client
# learns neither whether the user exists nor which step failed.
_INVALID = "Authentication failed: Invalid user credentials"


class ScramState(enum.Enum):
    RECEIVE_CLIENT_FIRST = "waiting for client-first-message"
    RECEIVE_CLIENT_FINAL = "server-first sent; waiting for client-final-message"
    COMPLETE = "proof verified; server-final sent"
    FAILED = "the exchange failed"


# Each state -> the states it may follow (the table of the module docstring).
_PREVIOUS: dict[ScramState, frozenset[ScramState]] = {
    ScramState.RECEIVE_CLIENT_FIRST: frozenset(),
    ScramState.RECEIVE_CLIENT_FINAL: frozenset({ScramState.RECEIVE_CLIENT_FIRST}),
    ScramState.COMPLETE: frozenset({ScramState.RECEIVE_CLIENT_FINAL}),
    ScramState.FAILED: frozenset(
        {ScramState.RECEIVE_CLIENT_FIRST, ScramState.RECEIVE_CLIENT_FINAL}
    ),
}


def random_nonce() -> str:
    # 24 random bytes as URL-safe base64: printable, never ',' (RFC 5802 `printable`).
    return secrets.token_urlsafe(24)


class ScramServer:
    def __init__(
        self,
        mechanism: str,
        store: CredentialStore,
        nonce: Callable[[], str] = random_nonce,
    ) -> None:
        if mechanism not in HASHES:
            raise ValueError(f"not a SCRAM mechanism: {mechanism}")
        self.mechanism = mechanism
        self._hash = HASHES[mechanism]
        self._store = store
        self._nonce = nonce
        self.state = ScramState.RECEIVE_CLIENT_FIRST
        self.principal: str | None = None
        # Kept between the two client messages, dropped once the exchange ends.
        self._credential: ScramCredential | None = None
        self._username = ""
        self._gs2_header = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._client_nonce = ""
        self._full_nonce = ""

    @property
    def complete(self) -> bool:
        return self.state is ScramState.COMPLETE

    def _set(self, state: ScramState) -> None:
        assert self.state in _PREVIOUS[state], f"SCRAM: {self.state.name} -> {state.name}"
        self.state = state
        if state in (ScramState.COMPLETE, ScramState.FAILED):
            self._credential = None

    def evaluate(self, token: bytes) -> bytes:
        """One client message in, the server's reply out; raises AuthenticationFailed."""
        try:
            if self.state is ScramState.RECEIVE_CLIENT_FIRST:
                reply = self._client_first(token)
                self._set(ScramState.RECEIVE_CLIENT_FINAL)
            elif self.state is ScramState.RECEIVE_CLIENT_FINAL:
                reply = self._client_final(token)
                self._set(ScramState.COMPLETE)
            else:
                raise IllegalSaslState(f"Unexpected SASL/SCRAM message in state {self.state.name}")
        except AuthenticationFailed:
            if self.state in _PREVIOUS[ScramState.FAILED]:  # not yet terminal
                self._set(ScramState.FAILED)
            raise
        return reply

    # --- the two steps ------------------------------------------------------------------------

    def _client_first(self, token: bytes) -> bytes:
        message = _text(token)
        # gs2-header: cbind flag, authzid, then the bare message.
        flag, _, rest = message.partition(",")
        authzid_field, sep, bare = rest.partition(",")
        if not sep:
            raise AuthenticationFailed("Invalid SCRAM client first message")
        if flag.startswith("p="):
            raise AuthenticationFailed("SCRAM channel binding is not supported")
        if flag not in ("n", "y"):
            raise AuthenticationFailed("Invalid SCRAM client first message: bad gs2 header")
        authzid = ""
        if authzid_field:
            if not authzid_field.startswith("a="):
                raise AuthenticationFailed("Invalid SCRAM client first message: bad authzid")
            authzid = _sasl_name(authzid_field[2:])
        fields = bare.split(",")
        if fields[0].startswith("m="):
            raise AuthenticationFailed("SCRAM mandatory extensions are not supported")
        if len(fields) < 2 or not fields[0].startswith("n=") or not fields[1].startswith("r="):
            raise AuthenticationFailed("Invalid SCRAM client first message")
        username = _sasl_name(fields[0][2:])
        client_nonce = fields[1][2:]
        if not client_nonce:
            raise AuthenticationFailed("Invalid SCRAM client first message: empty nonce")
        credential = self._store.scram(username, self.mechanism)
        if credential is None:
            raise AuthenticationFailed(_INVALID)
        if authzid and authzid != username:
            raise AuthenticationFailed(
                "Authentication failed: Client requested an "
                "authorization id that is different from username"
            )
        self._credential = credential
        self._username = username
        self._gs2_header = f"{flag},{authzid_field},"
        self._client_first_bare = bare
        self._client_nonce = client_nonce
        self._full_nonce = client_nonce + self._nonce()
        salt = base64.b64encode(credential.salt).decode()
        self._server_first = f"r={self._full_nonce},s={salt},i={credential.iterations}"
        return self._server_first.encode()

    def _client_final(self, token: bytes) -> bytes:
        credential = self._credential
        assert credential is not None  # set by _client_first
        message = _text(token)
        without_proof, sep, proof_field = message.rpartition(",")
        if not sep or not proof_field.startswith("p="):
            raise AuthenticationFailed("Invalid SCRAM client final message: no proof")
        fields = without_proof.split(",")
        if len(fields) < 2 or not fields[0].startswith("c=") or not fields[1].startswith("r="):
            raise AuthenticationFailed("Invalid SCRAM client final message")
        expected_binding = base64.b64encode(self._gs2_header.encode()).decode()
        if fields[0][2:] != expected_binding:
            raise AuthenticationFailed(
                "Invalid SCRAM client final message: channel binding "
                "does not match the first message"
            )
        # librdkafka before 2.6.1 (Debian's kcat: 2.0.2) sends its client nonce once more in
        # front of the combined nonce (librdkafka#4895). Kafka 3.8.1-3.9 accepted that, Kafka 4
        # does not (CVE-2024-56128 made the check strict). klamm accepts exactly that form: it
        # still carries this exchange's fresh server nonce, and the proof covers it, so replay
        # protection is intact, and kcat from the distribution keeps working.
        nonce = fields[1][2:]
        if nonce not in (self._full_nonce, self._client_nonce + self._full_nonce):
            raise AuthenticationFailed("Invalid client nonce in the final client message.")
        try:
            proof = base64.b64decode(proof_field[2:], validate=True)
        except (binascii.Error, ValueError):
            raise AuthenticationFailed("Invalid SCRAM client final message: bad proof") from None
        auth_message = ",".join(
            (self._client_first_bare, self._server_first, without_proof)
        ).encode()
        client_signature = hmac.digest(credential.stored_key, auth_message, self._hash)
        if len(proof) != len(client_signature):
            raise AuthenticationFailed(_INVALID)
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        computed = hashlib.new(self._hash, client_key).digest()
        if not hmac.compare_digest(computed, credential.stored_key):
            raise AuthenticationFailed(_INVALID)
        server_signature = hmac.digest(credential.server_key, auth_message, self._hash)
        self.principal = self._username
        return b"v=" + base64.b64encode(server_signature)


def _text(token: bytes) -> str:
    try:
        return token.decode()
    except UnicodeDecodeError:
        raise AuthenticationFailed("Invalid SCRAM message: not UTF-8") from None


def _sasl_name(value: str) -> str:
    """RFC 5802 saslname: ',' and '=' arrive as '=2C' and '=3D'; any other '=' is invalid."""
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "=":
            escape = value[i + 1 : i + 3]
            if escape not in ("2C", "3D"):
                raise AuthenticationFailed("Invalid SCRAM user name encoding")
            out.append("," if escape == "2C" else "=")
            i += 3
        else:
            out.append(char)
            i += 1
    return "".join(out)
