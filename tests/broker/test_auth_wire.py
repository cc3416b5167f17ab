"""SASL on the wire, byte by byte: what Kafka answers and when it closes the connection."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator

import pytest

from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

HANDSHAKE, AUTHENTICATE, METADATA, API_VERSIONS = 17, 36, 3, 18


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(
        security_protocol="SASL_PLAINTEXT",
        sasl_users={"alice": "secret"},
        sasl_mechanisms=("PLAIN", "SCRAM-SHA-512"),
    ) as b:
        yield b


def _login(wire: Wire, password: str = "secret", version: int = 2) -> object:
    assert wire.request(HANDSHAKE, 1, mechanism="PLAIN").error_code == ErrorCode.none
    token = b"\x00alice\x00" + password.encode()
    return wire.request(AUTHENTICATE, version, auth_bytes=token)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_login_then_serve(broker: EmbeddedBroker, version: int) -> None:
    with Wire(broker.bootstrap) as wire:
        assert wire.request(API_VERSIONS, 3, client_software_name="t", client_software_version="1")
        response = _login(wire, version=version)
        assert response.error_code == ErrorCode.none  # type: ignore[attr-defined]
        if version >= 1:
            assert response.session_lifetime.total_seconds() == 0  # type: ignore[attr-defined]
        assert wire.request(METADATA, 1, topics=[]).brokers[0].port == broker.port


def test_wrong_password_gets_58_with_a_message_then_closes(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        response = _login(wire, password="wrong")
        assert response.error_code == ErrorCode.sasl_authentication_failed  # type: ignore[attr-defined]
        assert "Invalid username or password" in response.error_message  # type: ignore[attr-defined]
        assert wire.is_closed()
    with Wire(broker.bootstrap) as other:  # everyone else is still served
        assert _login(other).error_code == ErrorCode.none  # type: ignore[attr-defined]


def test_unsupported_mechanism_gets_33_listing_enabled_then_closes(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        response = wire.request(HANDSHAKE, 1, mechanism="SCRAM-SHA-256")
        assert response.error_code == ErrorCode.unsupported_sasl_mechanism
        assert list(response.mechanisms) == ["PLAIN", "SCRAM-SHA-512"]
        assert wire.is_closed()


@pytest.mark.parametrize("before_handshake", [True, False])
def test_request_before_login_closes(broker: EmbeddedBroker, before_handshake: bool) -> None:
    with Wire(broker.bootstrap) as wire:
        if not before_handshake:
            wire.request(HANDSHAKE, 1, mechanism="PLAIN")
        wire.send_raw(wire.header(METADATA, 1) + struct.pack(">i", 0))
        assert wire.is_closed()


def test_handshake_v0_raw_tokens(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        assert wire.request(HANDSHAKE, 0, mechanism="PLAIN").error_code == ErrorCode.none
        wire.send_raw(b"\x00alice\x00secret")
        assert wire.recv_frame() == b""  # PLAIN's empty reply, length-prefixed
        assert wire.request(METADATA, 1, topics=[]).brokers[0].port == broker.port
    with Wire(broker.bootstrap) as wire:
        wire.request(HANDSHAKE, 0, mechanism="PLAIN")
        wire.send_raw(b"\x00alice\x00wrong")
        assert wire.is_closed()  # v0 cannot carry an error: Kafka just closes


def test_after_login_sasl_requests_are_illegal(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        _login(wire)
        response = wire.request(AUTHENTICATE, 1, auth_bytes=b"\x00alice\x00secret")
        assert response.error_code == ErrorCode.illegal_sasl_state
        assert wire.request(HANDSHAKE, 1, mechanism="PLAIN").error_code == 34
        assert wire.request(METADATA, 1, topics=[]).brokers  # still open


def test_plaintext_listener_answers_illegal_sasl_state() -> None:
    with EmbeddedBroker() as plain, Wire(plain.bootstrap) as wire:
        response = wire.request(HANDSHAKE, 1, mechanism="PLAIN")
        assert response.error_code == ErrorCode.illegal_sasl_state
        assert wire.request(METADATA, 1, topics=[]).brokers


def test_big_frames_wait_for_a_login(broker: EmbeddedBroker) -> None:
    """Kafka's sasl.server.max.receive.size (512 KiB) before authentication; the full
    socket.request.max.bytes after it."""
    with Wire(broker.bootstrap) as anonymous:
        anonymous.sock.sendall(struct.pack(">i", 600 * 1024) + b"\0" * 64)
        assert anonymous.is_closed()
    batch = build_batch(
        RecordBatch(records=[Record(0, int(time.time() * 1000), b"k", b"v" * 600_000)])
    )
    with Wire(broker.bootstrap) as wire:
        assert _login(wire).error_code == ErrorCode.none  # type: ignore[attr-defined]
        wire.request(
            METADATA, 4, topics=[{"name": "big-after-login"}], allow_auto_topic_creation=True
        )
        response = wire.request(
            0, 7, transactional_id=None, acks=-1, timeout=5000,
            topic_data=[{"name": "big-after-login",
                         "partition_data": [{"index": 0, "records": batch}]}],
        )  # fmt: skip
        assert response.responses[0].partition_responses[0].error_code == ErrorCode.none
