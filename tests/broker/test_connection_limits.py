"""Connections cost bounded memory and time: Kafka's max.connections(.per.ip) and
connections.max.idle.ms, an authentication timeout on SASL listeners, no receive buffer held
per idle connection, and responses held behind a parked Fetch bounded in bytes."""

from __future__ import annotations

import io
import logging
import socket
import struct
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from kio.serial import entity_reader, entity_writer

from klamm.broker.config import BrokerConfig, ConfigFileError, config_from_properties
from klamm.broker.connections import Connections
from klamm.protocol.build import build
from klamm.protocol.errors import ErrorCode
from klamm.protocol.messages import request_type, response_type
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.testing import EmbeddedBroker
from tests.broker.broker_helpers import connection_of, on_loop, stable
from tests.broker.wire import Wire

FETCH, METADATA, API_VERSIONS, HANDSHAKE, AUTHENTICATE = 1, 3, 18, 17, 36


def _served(wire: Wire) -> bool:
    return bool(wire.request(METADATA, 1, topics=[]).brokers)


def _frames(wire: Wire, api_key: int, version: int, count: int, **fields: Any) -> bytes:
    """`count` copies of one request, each with its own correlation id, in one buffer."""
    cls = request_type(api_key, version)
    body = io.BytesIO()
    entity_writer(cls)(body, build(cls, **fields))
    out = []
    for _ in range(count):
        payload = wire.header(api_key, version) + body.getvalue()
        out.append(struct.pack(">i", len(payload)) + payload)
    return b"".join(out)


def _fetch_fields(topic: str, max_wait_ms: int, min_bytes: int) -> dict[str, Any]:
    return dict(
        replica_id=-1, max_wait=max_wait_ms, min_bytes=min_bytes, max_bytes=1 << 20,
        isolation_level=0, session_id=0, session_epoch=-1, forgotten_topics_data=[], rack_id="",
        topics=[{"topic": topic, "partitions": [{
            "partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
            "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
    )  # fmt: skip


def _create_topic(wire: Wire, name: str, partitions: int = 1) -> None:
    response = wire.request(
        19, 4, timeout=30000, validate_only=False,
        topics=[{"name": name, "num_partitions": partitions, "replication_factor": 1,
                 "assignments": [], "configs": []}],
    )  # fmt: skip
    assert response.topics[0].error_code == ErrorCode.none


def _wait_until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


# --- max.connections, max.connections.per.ip ---------------------------------------------------


@pytest.mark.parametrize("setting", ["max_connections_per_ip", "max_connections"])
def test_a_connection_over_the_limit_is_closed_with_a_warning(
    setting: str, caplog: pytest.LogCaptureFixture
) -> None:
    with EmbeddedBroker(**{setting: 3}) as broker:
        wires = [Wire(broker.bootstrap) for _ in range(3)]
        try:
            assert all(_served(w) for w in wires)
            with caplog.at_level(logging.WARNING, logger="klamm"), Wire(broker.bootstrap) as extra:
                assert extra.is_closed()
            name = setting.replace("_", ".")
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert any(f"{name}=3" in m for m in warnings), warnings
            assert all(_served(w) for w in wires)  # those within the limit keep being served
            wires.pop().close()  # a slot frees up once the broker has seen the close

            def a_new_one_is_served() -> bool:
                with Wire(broker.bootstrap) as again:
                    try:
                        return _served(again)
                    except ConnectionError:
                        return False

            assert _wait_until(a_new_one_is_served)
        finally:
            for wire in wires:
                wire.close()


def test_refusals_are_logged_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    with EmbeddedBroker(max_connections_per_ip=1) as broker, Wire(broker.bootstrap) as first:
        assert _served(first)
        with caplog.at_level(logging.WARNING, logger="klamm"):
            for _ in range(20):
                with Wire(broker.bootstrap) as extra:
                    assert extra.is_closed()
        refusals = [r for r in caplog.records if "refused a connection" in r.getMessage()]
        assert len(refusals) == 1


def test_the_limits_are_read_from_server_properties() -> None:
    config = config_from_properties(
        {"max.connections": "500", "max.connections.per.ip": "50",
         "connections.max.idle.ms": "60000", "sasl.server.max.receive.size": "1024",
         "klamm.sasl.authentication.timeout.ms": "5000",
         "max.connections.per.ip.overrides": "10.0.0.1:5, [::1]:7 ,"},
        BrokerConfig(),
    )  # fmt: skip
    assert (config.max_connections, config.max_connections_per_ip) == (500, 50)
    assert config.connections_max_idle_ms == 60000
    assert config.sasl_server_max_receive_size == 1024
    assert config.sasl_authentication_timeout_ms == 5000
    assert config.max_connections_per_ip_overrides == {"10.0.0.1": 5, "::1": 7}
    for bad in ("max.connections.per.ip.overrides=host.example:5", "max.connections=-1"):
        key, _, value = bad.partition("=")
        with pytest.raises(ConfigFileError, match=key):
            config_from_properties({key: value}, BrokerConfig())
    defaults = BrokerConfig()  # Kafka's defaults
    assert defaults.max_connections == defaults.max_connections_per_ip == 2**31 - 1
    assert defaults.connections_max_idle_ms == 600_000


# --- connections.max.idle.ms ------------------------------------------------------------------


IDLE_MS = 600


@pytest.fixture(scope="module")
def idle_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(connections_max_idle_ms=IDLE_MS) as b:
        yield b


def test_an_idle_connection_is_closed(idle_broker: EmbeddedBroker) -> None:
    with Wire(idle_broker.bootstrap) as wire:
        assert _served(wire)
        started = time.monotonic()
        assert _wait_until(wire.is_closed)
        assert time.monotonic() - started >= IDLE_MS / 1000 * 0.8  # not before it was idle


def test_a_half_sent_frame_is_not_held_for_ever(idle_broker: EmbeddedBroker) -> None:
    with Wire(idle_broker.bootstrap) as wire:
        wire.sock.sendall(struct.pack(">i", 99 * 1024 * 1024) + b"\0" * 1000)  # then silence
        assert _wait_until(wire.is_closed)


def test_a_busy_connection_stays_open(idle_broker: EmbeddedBroker) -> None:
    with Wire(idle_broker.bootstrap) as wire:
        for _ in range(15):  # 1.5 s: more than twice the idle timeout
            assert _served(wire)
            time.sleep(0.1)


def test_a_parked_fetch_longer_than_the_idle_timeout_is_answered(
    idle_broker: EmbeddedBroker, unique: str
) -> None:
    with Wire(idle_broker.bootstrap) as wire:
        _create_topic(wire, f"idle-{unique}")
        started = time.monotonic()
        wait_ms = 2 * IDLE_MS
        response = wire.request(FETCH, 11, **_fetch_fields(f"idle-{unique}", wait_ms, 1 << 20))
        assert time.monotonic() - started >= wait_ms / 1000 * 0.8  # never cut short
        assert response.responses[0].partitions[0].error_code == ErrorCode.none
        assert _wait_until(wire.is_closed)  # then it is idle like any other


def test_a_peer_that_stops_reading_is_closed_when_idle(
    idle_broker: EmbeddedBroker, unique: str
) -> None:
    """Its answer stuck in the broker's write buffer is no activity: the connection goes (not
    waiting for the buffer to drain, which would be never)."""
    topic = f"stuck-{unique}"
    with Wire(idle_broker.bootstrap) as producer:
        _create_topic(producer, topic)
        value = b"v" * (900 * 1024)  # under max.message.bytes
        batch = build_batch(RecordBatch(records=[Record(0, int(time.time() * 1000), b"k", value)]))
        response = producer.request(
            0, 7, transactional_id=None, acks=-1, timeout=5000,
            topic_data=[{"name": topic, "partition_data": [{"index": 0, "records": batch}]}],
        )  # fmt: skip
        assert response.responses[0].partition_responses[0].error_code == ErrorCode.none
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the answers cannot fit
    sock.connect(("127.0.0.1", idle_broker.port))
    wire = Wire.__new__(Wire)
    wire.sock, wire._correlation = sock, 0
    with wire:
        wire.sock.sendall(_frames(wire, FETCH, 11, 10, **_fetch_fields(topic, 0, 1)))  # 9 MB
        ref = connection_of(idle_broker, wire)
        assert _wait_until(lambda: ref() is None or on_loop(idle_broker, ref().buffered_bytes) > 0)
        assert _wait_until(lambda: ref() is None)  # closed and let go of


# --- SASL: an authentication timeout ----------------------------------------------------------


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(
        security_protocol="SASL_PLAINTEXT",
        sasl_users={"alice": "secret"},
        sasl_mechanisms=("PLAIN",),
        sasl_authentication_timeout_ms=600,
    ) as b:
        yield b


def test_an_unauthenticated_connection_is_closed_however_busy(sasl_broker: EmbeddedBroker) -> None:
    with Wire(sasl_broker.bootstrap) as wire:
        assert wire.request(API_VERSIONS, 0)  # allowed before a login, but no login follows
        wire.sock.sendall(struct.pack(">i", 100))  # a frame, sent one byte every 50 ms
        started = time.monotonic()
        closed = False
        while not closed and time.monotonic() - started < 5:
            try:
                wire.sock.sendall(b"\0")
            except OSError:
                closed = True
            time.sleep(0.05)
        assert closed or wire.is_closed()
        assert time.monotonic() - started < 3  # the idle timeout (10 min) never came into it


def test_an_authenticated_connection_outlives_the_authentication_timeout(
    sasl_broker: EmbeddedBroker,
) -> None:
    with Wire(sasl_broker.bootstrap) as wire:
        assert wire.request(HANDSHAKE, 1, mechanism="PLAIN").error_code == ErrorCode.none
        login = wire.request(AUTHENTICATE, 2, auth_bytes=b"\0alice\0secret")
        assert login.error_code == ErrorCode.none
        time.sleep(1.0)
        assert _served(wire)


# --- memory: no receive buffer per idle connection ----------------------------------------------


def test_an_idle_connection_holds_no_receive_buffer() -> None:
    """Each connection had its own 256 KiB receive buffer (2,000 idle connections: 558 MiB
    RSS); they now share one. Measured with tracemalloc, which sees the broker thread too."""
    count = 100
    with EmbeddedBroker() as broker:
        warm = [Wire(broker.bootstrap) for _ in range(5)]  # first-use caches, before measuring
        for wire in warm:
            assert wire.request(API_VERSIONS, 0)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            wires = [Wire(broker.bootstrap) for _ in range(count)]
            for wire in wires:
                assert wire.request(API_VERSIONS, 0)
            assert _wait_until(lambda: on_loop(broker, lambda: len(broker.broker.connections))
                               == count + len(warm))  # fmt: skip
            per_connection = (tracemalloc.get_traced_memory()[0] - before) / count
        finally:
            tracemalloc.stop()
            for wire in [*warm, *wires]:
                wire.close()
    assert per_connection < 32 * 1024, f"{per_connection / 1024:.0f} KiB per idle connection"


# --- responses held behind a parked Fetch -------------------------------------------------------

PARTITIONS = 250  # a Metadata v1 answer for the topic: about 6.5 KB
METADATAS = 400  # about 2.6 MB of answers if the broker held them all
HELD_BOUND = 1536 * 1024  # the 1 MiB bound plus a burst of 16 answers, with room to spare


def test_answers_held_behind_a_parked_fetch_are_bounded_in_bytes(unique: str) -> None:
    topic = f"held-{unique}"
    with EmbeddedBroker() as broker, Wire(broker.bootstrap, timeout=30) as wire:
        _create_topic(wire, topic, PARTITIONS)
        started_before = broker.broker.request_counts[METADATA]
        # A Fetch that parks for 3 s, then many big answers behind it.
        wire.sock.sendall(
            _frames(wire, FETCH, 11, 1, **_fetch_fields(topic, 3000, 1 << 20))
            + _frames(wire, METADATA, 1, METADATAS, topics=[{"name": topic}])
        )
        ref = connection_of(broker, wire)

        def held() -> tuple[int, int]:
            connection = ref()
            assert connection is not None
            return connection.buffered_bytes(), broker.broker.request_counts[METADATA]

        buffered, started = stable(broker, held)
        assert buffered < HELD_BOUND, f"{buffered} bytes held behind a parked Fetch"
        assert started - started_before < METADATAS  # the rest wait, unread or unstarted
        # Once the Fetch is answered everything arrives, in order.
        first = struct.unpack_from(">i", wire.recv_frame(), 0)[0]  # the Fetch
        reader = entity_reader(response_type(METADATA, 1))
        for n in range(1, METADATAS + 1):
            frame = wire.recv_frame()
            assert struct.unpack_from(">i", frame, 0)[0] == first + n
        assert len(reader(frame, 4)[0].topics[0].partitions) == PARTITIONS


def test_a_second_fetch_waits_for_the_first(unique: str) -> None:
    """No client has two Fetches in flight on one connection; a pipeline of parked ones would
    build all their answers at once when data arrives."""
    topic = f"fetches-{unique}"
    with EmbeddedBroker() as broker, Wire(broker.bootstrap, timeout=30) as wire:
        _create_topic(wire, topic)
        before = broker.broker.request_counts[FETCH]
        wire.sock.sendall(_frames(wire, FETCH, 11, 20, **_fetch_fields(topic, 5000, 1)))
        connection_of(broker, wire)
        started = stable(broker, lambda: broker.broker.request_counts[FETCH])
        assert started - before == 1
        batch = build_batch(RecordBatch(records=[Record(0, int(time.time() * 1000), b"k", b"v")]))
        with Wire(broker.bootstrap) as producer:
            response = producer.request(
                0, 7, transactional_id=None, acks=-1, timeout=5000,
                topic_data=[{"name": topic, "partition_data": [{"index": 0, "records": batch}]}],
            )  # fmt: skip
            assert response.responses[0].partition_responses[0].error_code == ErrorCode.none
        reader = entity_reader(response_type(FETCH, 11))
        first = None
        for n in range(20):  # each one answered, with the record, in order
            frame = wire.recv_frame()
            correlation = struct.unpack_from(">i", frame, 0)[0]
            first = correlation if first is None else first
            assert correlation == first + n
            assert reader(frame, 4)[0].responses[0].partitions[0].records


def test_connections_counts_per_address_and_summarises_refusals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    connections: Connections[str] = Connections(4, 2, {"10.0.0.9": 0}, clock=lambda: now[0])
    for name, ip in [("a1", "10.0.0.1"), ("a2", "10.0.0.1"), ("b1", "10.0.0.2")]:
        assert connections.admit(name, ip) is None
    with caplog.at_level(logging.WARNING, logger="klamm"):
        assert "max.connections.per.ip=2" in (connections.admit("a3", "10.0.0.1") or "")
        assert "overrides=0" in (connections.admit("d1", "10.0.0.9") or "")  # not logged
        assert connections.admit("c1", "10.0.0.3") is None  # another address: room left
        assert "max.connections=4" in (connections.admit("c2", "10.0.0.3") or "")  # not logged
        now[0] = 11.0
        assert connections.admit("c3", "10.0.0.3") is not None  # logged, with the count
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "(2 more refused since the last warning)" in lines[1]
    assert sorted(connections) == ["a1", "a2", "b1", "c1"]  # the refused ones are not counted
    connections.discard("a1")
    connections.discard("a1")  # twice, or one never admitted: no harm
    connections.discard("c2")
    assert connections.admit("a3", "10.0.0.1") is None
    assert len(connections) == 4
