"""klamm.client.wire, the raw-protocol client of the console and `klamm transactions`: the bytes
it sends, the answers it accepts, and one clear WireError for everything a broker can get wrong.
Each test scripts one connection of a listener on a real socket; one asks a real klamm broker."""

from __future__ import annotations

import datetime
import io
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.list_transactions.v0 import response as list_txn
from kio.schema.request_header.v2.header import RequestHeader
from kio.schema.write_txn_markers.v1.request import WriteTxnMarkersRequest
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i32Timedelta

from klamm.client.wire import (
    LIST_TRANSACTIONS,
    MAX_RESPONSE_BYTES,
    WRITE_TXN_MARKERS,
    RawClient,
    WireError,
    request_type,
)
from klamm.testing import EmbeddedBroker

Serve = Callable[[socket.socket, bytes], None]


@contextmanager
def one_connection(serve: Serve) -> Iterator[int]:
    """A listener on an ephemeral port that reads one request frame from its first connection,
    hands it to `serve` with the socket, then closes; yields the port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def run() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return  # the test ended without connecting
        with conn:
            (size,) = struct.unpack(">i", conn.recv(4, socket.MSG_WAITALL))
            serve(conn, conn.recv(size, socket.MSG_WAITALL))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        thread.join(timeout=10)


def list_transactions_answer() -> bytes:
    out = io.BytesIO()
    entity_writer(list_txn.ListTransactionsResponse)(
        out,
        list_txn.ListTransactionsResponse(
            throttle_time=i32Timedelta.parse(datetime.timedelta(0)),
            error_code=ErrorCode.none,
            unknown_state_filters=(),
            transaction_states=(),
        ),
    )
    return out.getvalue()


def reply(header_tail: bytes, body: bytes, correlation: int = 1) -> Serve:
    def serve(conn: socket.socket, _request: bytes) -> None:
        answer = struct.pack(">i", correlation) + header_tail + body
        conn.sendall(struct.pack(">i", len(answer)) + answer)

    return serve


def ask(port: int, timeout_s: float = 10.0) -> Any:
    body = request_type(LIST_TRANSACTIONS)()
    return RawClient("test", None, timeout_s).request("127.0.0.1", port, LIST_TRANSACTIONS, body)


def test_request_header_and_body_are_kafkas() -> None:
    seen: list[bytes] = []

    def serve(conn: socket.socket, request: bytes) -> None:
        seen.append(request)

    body = WriteTxnMarkersRequest(markers=())
    with one_connection(serve) as port, pytest.raises(WireError):
        RawClient("tools").request("127.0.0.1", port, WRITE_TXN_MARKERS, body)
    [request] = seen
    header, size = entity_reader(RequestHeader)(request, 0)
    assert (header.request_api_key, header.request_api_version) == (WRITE_TXN_MARKERS, 1)
    assert (header.correlation_id, header.client_id) == (1, "tools")
    assert entity_reader(WriteTxnMarkersRequest)(request, size)[0] == body


def test_unknown_tagged_fields_in_the_response_header_are_skipped() -> None:
    # Two tagged fields a newer broker might send: tag 5 (2 bytes) and tag 300 (0 bytes).
    tagged = b"\x02" + b"\x05\x02ab" + b"\xac\x02\x00"
    with one_connection(reply(tagged, list_transactions_answer())) as port:
        answer = ask(port)
    assert answer.error_code == ErrorCode.none and answer.transaction_states == ()


@pytest.mark.parametrize(
    ("serve", "message"),
    [
        (reply(b"\0", list_transactions_answer(), correlation=7), "answered request 7, not 1"),
        (reply(b"\0", b"\xff\xff"), "ListTransactions answer that cannot be read"),
        (reply(b"\x01\x05\x09", b""), "ListTransactions answer that cannot be read"),
        (lambda conn, _: conn.sendall(struct.pack(">i", MAX_RESPONSE_BYTES + 1)),
         f"ListTransactions answer of {MAX_RESPONSE_BYTES + 1} bytes"),
        (lambda conn, _: conn.sendall(struct.pack(">i", -1)), "answer of -1 bytes"),
        (lambda conn, _: None, "closed the connection instead of answering ListTransactions"),
        (lambda conn, _: conn.sendall(b"\0\0\0\x10\0\0"), "it may not serve it"),
    ],
    ids=["correlation", "body", "tagged-overrun", "huge", "negative", "closed", "short"],
)  # fmt: skip
def test_a_broker_answering_wrongly_is_one_wire_error(serve: Serve, message: str) -> None:
    with one_connection(serve) as port, pytest.raises(WireError) as caught:
        ask(port)
    assert message in str(caught.value)
    assert f"127.0.0.1:{port}" in str(caught.value) and "\n" not in str(caught.value)


def test_a_silent_broker_times_out() -> None:
    release = threading.Event()
    with one_connection(lambda conn, _: release.wait(10)) as port:
        try:
            with pytest.raises(WireError, match=r"did not answer ListTransactions within 0\.2 s"):
                ask(port, timeout_s=0.2)
        finally:
            release.set()


def test_nobody_listening() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(WireError, match=f"cannot reach broker 127.0.0.1:{port} to ask List"):
        ask(port)


def test_a_body_of_another_version_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="WriteTxnMarkers v1"):
        RawClient("tools").request("127.0.0.1", 9, WRITE_TXN_MARKERS, object())


def test_a_real_broker_answers(tmp_path: Path) -> None:
    with EmbeddedBroker(tmp_path / "data") as broker:
        host, port = broker.bootstrap.rsplit(":", 1)
        body = request_type(LIST_TRANSACTIONS)()
        answer = RawClient("test").request(host, int(port), LIST_TRANSACTIONS, body)
    assert answer.error_code == ErrorCode.none
