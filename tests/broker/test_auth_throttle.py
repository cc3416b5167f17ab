"""Failed SASL logins are slowed as in Kafka (connection.failed.authentication.delay.ms,
KAFKA-10798): the error response and the close come only after the delay, so one connection
guesses at most one password per delay, while every other client is served as usual."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator

import pytest

from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

HANDSHAKE, AUTHENTICATE, METADATA = 17, 36, 3
DELAY_MS = 1000
# The failure must not come before the delay; a little early for timer granularity.
AT_LEAST = DELAY_MS / 1000 * 0.9


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(
        security_protocol="SASL_PLAINTEXT",
        sasl_users={"alice": "secret"},
        sasl_mechanisms=("PLAIN",),
        failed_authentication_delay_ms=DELAY_MS,
    ) as b:
        yield b


def _login(wire: Wire, password: str) -> object:
    assert wire.request(HANDSHAKE, 1, mechanism="PLAIN").error_code == ErrorCode.none
    return wire.request(AUTHENTICATE, 2, auth_bytes=b"\0alice\0" + password.encode())


def test_a_failed_login_is_answered_only_after_the_delay(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        started = time.monotonic()
        response = _login(wire, "guess")
        took = time.monotonic() - started
        assert response.error_code == ErrorCode.sasl_authentication_failed  # type: ignore[attr-defined]
        assert took >= AT_LEAST, f"failure answered after {took * 1000:.0f} ms"
        assert wire.is_closed()


def test_others_are_served_during_the_delay(broker: EmbeddedBroker) -> None:
    """The delay is a timer: many failing logins at once slow no one else."""
    guessers = [Wire(broker.bootstrap) for _ in range(20)]
    try:
        threads = [threading.Thread(target=_login, args=(w, "guess")) for w in guessers]
        for thread in threads:
            thread.start()
        time.sleep(0.1)  # the guesses are in, their answers pending
        started = time.monotonic()
        with Wire(broker.bootstrap) as wire:
            assert _login(wire, "secret").error_code == ErrorCode.none  # type: ignore[attr-defined]
            assert wire.request(METADATA, 1, topics=[]).brokers
        assert time.monotonic() - started < AT_LEAST / 2
        for thread in threads:
            thread.join(10)
    finally:
        for wire in guessers:
            wire.close()


def test_a_failed_handshake_v0_login_closes_only_after_the_delay(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        assert wire.request(HANDSHAKE, 0, mechanism="PLAIN").error_code == ErrorCode.none
        started = time.monotonic()
        wire.send_raw(b"\0alice\0guess")  # v0: a bare token, and no way to carry an error
        wire.sock.settimeout(5)
        assert wire.sock.recv(1) == b""
        assert time.monotonic() - started >= AT_LEAST


def test_a_request_before_the_login_closes_only_after_the_delay(broker: EmbeddedBroker) -> None:
    """Kafka counts it as a failed authentication (IllegalSaslStateException), delay and all."""
    with Wire(broker.bootstrap) as wire:
        started = time.monotonic()
        wire.send_raw(wire.header(METADATA, 1) + struct.pack(">i", 0))
        wire.sock.settimeout(5)
        assert wire.sock.recv(1) == b""
        assert time.monotonic() - started >= AT_LEAST
