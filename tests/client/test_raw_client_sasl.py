"""klamm.client.wire's SASL login (SaslHandshake v1, SaslAuthenticate v2) against real klamm
brokers: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 over SASL_PLAINTEXT and SASL_SSL, configured with
librdkafka's property names; a refused login is one WireError line naming the broker, never a
hang."""

from __future__ import annotations

import base64
import contextlib
import datetime
import io
import re
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.sasl_authenticate.v2 import response as sasl_authenticate
from kio.schema.sasl_handshake.v1 import response as sasl_handshake
from kio.serial import entity_writer
from kio.static.primitive import i64Timedelta

from klamm.client.wire import (
    LIST_TRANSACTIONS,
    RawClient,
    SaslLogin,
    WireConfigError,
    WireError,
    request_type,
)
from klamm.testing import EmbeddedBroker
from tests.interop.auth_support import MECHANISMS, USERS, make_certs

# Seconds a refused login may take before the test calls it a hang: the broker answers a wrong
# password at once (plus Kafka's 100 ms failed-authentication delay at most).
PROMPT_S = 5.0


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(
        tmp_path_factory.mktemp("sasl"), security_protocol="SASL_PLAINTEXT",
        sasl_users=dict(USERS),
    ) as broker:  # fmt: skip
        yield broker


def ask(broker: EmbeddedBroker, conf: dict[str, Any], timeout_s: float = PROMPT_S) -> Any:
    host, port = broker.bootstrap.rsplit(":", 1)
    client = RawClient.from_config("test", conf, timeout_s)
    return client.request(host, int(port), LIST_TRANSACTIONS, request_type(LIST_TRANSACTIONS)())


def sasl(mechanism: str, user: str = "bob", password: str | None = None) -> dict[str, Any]:
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": USERS[user] if password is None else password,
    }


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_login_then_request(sasl_broker: EmbeddedBroker, mechanism: str) -> None:
    # bob's password holds ':', ',' and a non-ASCII letter.
    assert ask(sasl_broker, sasl(mechanism)).error_code == ErrorCode.none


def test_librdkafkas_other_spellings(sasl_broker: EmbeddedBroker) -> None:
    conf = {**sasl("scram-sha-512", user="alice"), "security.protocol": "sasl_plaintext"}
    conf["sasl.mechanisms"] = conf.pop("sasl.mechanism")
    assert ask(sasl_broker, conf).error_code == ErrorCode.none


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_wrong_password_is_one_line_naming_the_broker(
    sasl_broker: EmbeddedBroker, mechanism: str
) -> None:
    with pytest.raises(WireError) as caught:
        ask(sasl_broker, sasl(mechanism, user="alice", password="wrong"))
    message = str(caught.value)
    assert f"broker {sasl_broker.bootstrap} refused the SASL {mechanism} login" in message
    assert "'alice'" in message and "SASL_AUTHENTICATION_FAILED" in message
    assert "\n" not in message and "wrong" not in message


def test_unknown_user(sasl_broker: EmbeddedBroker) -> None:
    with pytest.raises(WireError, match="SASL_AUTHENTICATION_FAILED"):
        ask(sasl_broker, sasl("SCRAM-SHA-256", user="alice") | {"sasl.username": "mallory"})


def test_a_mechanism_the_broker_does_not_offer(tmp_path: Path) -> None:
    only = EmbeddedBroker(
        tmp_path, security_protocol="SASL_PLAINTEXT", sasl_users=dict(USERS),
        sasl_mechanisms=("PLAIN", "SCRAM-SHA-512"),
    )  # fmt: skip
    with only as broker, pytest.raises(WireError) as caught:
        ask(broker, sasl("SCRAM-SHA-256"))
    assert str(caught.value) == (
        f"broker {broker.bootstrap} does not offer SASL SCRAM-SHA-256 "
        "(it offers PLAIN, SCRAM-SHA-512)"
    )


def test_a_login_to_a_plaintext_listener(tmp_path: Path) -> None:
    with EmbeddedBroker(tmp_path) as broker, pytest.raises(WireError) as caught:
        ask(broker, sasl("PLAIN"))
    assert "does not expect a SASL login" in str(caught.value)


def test_no_login_to_a_sasl_listener(sasl_broker: EmbeddedBroker) -> None:
    with pytest.raises(WireError) as caught:
        ask(sasl_broker, {})
    assert "closed the connection instead of answering ListTransactions" in str(caught.value)
    assert "SASL login" in str(caught.value)


def test_sasl_ssl(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    with EmbeddedBroker(
        tmp_path / "data", security_protocol="SASL_SSL", sasl_users=dict(USERS),
        ssl_certfile=certs.cert, ssl_keyfile=certs.key,
    ) as broker:  # fmt: skip
        conf = sasl("SCRAM-SHA-512") | {
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(certs.ca),
        }
        assert ask(broker, conf).error_code == ErrorCode.none
        # A certificate from another CA is one line too, before any password is sent.
        (tmp_path / "other").mkdir()
        other = make_certs(tmp_path / "other")
        with pytest.raises(WireError, match=f"TLS with broker {broker.bootstrap} failed.*CERT"):
            ask(broker, conf | {"ssl.ca.location": str(other.ca)})
        unverified = conf | {"enable.ssl.certificate.verification": "false"}
        del unverified["ssl.ca.location"]
        assert ask(broker, unverified).error_code == ErrorCode.none


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"security.protocol": "SASL_PLAINTEXT"}, "sasl.mechanism GSSAPI is not one"),
        ({"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"},
         "sasl.mechanism OAUTHBEARER is not one"),
        ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"},
         "SASL PLAIN needs sasl.username and sasl.password"),
        ({"security.protocol": "KERBEROS"}, "unknown security.protocol 'KERBEROS'"),
        (sasl("SCRAM-SHA-256", password="soft\u00adhyphen"), "characters SASLprep would change"),
        ({"security.protocol": "SSL", "ssl.ca.location": "/nonexistent/ca.pem"},
         "cannot use the ssl.* settings"),
    ],
    ids=["gssapi-default", "oauth", "no-user", "protocol", "saslprep", "ca-file"],
)  # fmt: skip
def test_settings_it_cannot_use(conf: dict[str, Any], message: str) -> None:
    with pytest.raises(WireConfigError) as caught:
        RawClient.from_config("test", conf)
    assert message in str(caught.value)


def test_the_password_stays_out_of_reprs() -> None:
    client = RawClient("t", sasl=SaslLogin("PLAIN", "alice", "s3cret"))
    assert "s3cret" not in repr(client)


class ImpostorBroker:
    """A listener that accepts one SCRAM login with any password and signs its last message
    with a key it does not have: a broker that does not know the user's key."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(10)
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn, contextlib.suppress(struct.error, OSError):  # the client may hang up early
            correlation, _ = self._read(conn)
            self._answer(conn, correlation, False, sasl_handshake.SaslHandshakeResponse(
                error_code=ErrorCode.none, mechanisms=("SCRAM-SHA-256",)))  # fmt: skip
            correlation, request = self._read(conn)
            nonce = re.search(rb"r=([\x21-\x2b\x2d-\x7e]+)", request)  # printable, no comma
            assert nonce is not None
            first = b"r=" + nonce.group(1) + b"srv,s=" + base64.b64encode(b"s" * 16) + b",i=4096"
            self._answer(conn, correlation, True, self._authenticate(first))
            correlation, _ = self._read(conn)
            forged = b"v=" + base64.b64encode(b"\0" * 32)
            self._answer(conn, correlation, True, self._authenticate(forged))
            conn.recv(1)  # until the client hangs up

    @staticmethod
    def _authenticate(token: bytes) -> Any:
        return sasl_authenticate.SaslAuthenticateResponse(
            error_code=ErrorCode.none, error_message=None, auth_bytes=token,
            session_lifetime=i64Timedelta.parse(datetime.timedelta(0)),
        )  # fmt: skip

    @staticmethod
    def _read(conn: socket.socket) -> tuple[int, bytes]:
        (size,) = struct.unpack(">i", conn.recv(4, socket.MSG_WAITALL))
        request = conn.recv(size, socket.MSG_WAITALL)
        return struct.unpack_from(">i", request, 4)[0], request

    @staticmethod
    def _answer(conn: socket.socket, correlation: int, flexible: bool, body: Any) -> None:
        out = io.BytesIO()
        out.write(struct.pack(">i", correlation) + (b"\0" if flexible else b""))
        entity_writer(type(body))(out, body)
        conn.sendall(struct.pack(">i", out.tell()) + out.getvalue())

    def close(self) -> None:
        self.server.close()
        self.thread.join(timeout=10)


def test_a_broker_that_cannot_prove_it_knows_the_key_gets_no_request() -> None:
    impostor = ImpostorBroker()
    try:
        client = RawClient("test", None, PROMPT_S, SaslLogin("SCRAM-SHA-256", "alice", "pw"))
        with pytest.raises(WireError) as caught:
            client.request("127.0.0.1", impostor.port, LIST_TRANSACTIONS,
                           request_type(LIST_TRANSACTIONS)())  # fmt: skip
    finally:
        impostor.close()
    assert str(caught.value) == (
        f"broker 127.0.0.1:{impostor.port} failed the SASL SCRAM-SHA-256 exchange: "
        "The server signature doesn't match."
    )
