"""wire.py's framing against a scripted broker on a real socket: one request read, one
kio-encoded answer written, as a Kafka broker would."""

from __future__ import annotations

import datetime
import io
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.describe_log_dirs.v2 import response as log_dirs
from kio.schema.errors import ErrorCode
from kio.serial import entity_writer
from kio.static.primitive import i32, i32Timedelta, i64

from klamm.console.wire import DESCRIBE_LOG_DIRS, Transport, WireError


@pytest.fixture
def scripted_broker() -> Iterator[tuple[int, list[Any]]]:
    """A listener answering each connection with the next scripted reply: `("body", bytes)`
    is framed with the request's correlation id and an empty tagged-field section, `("raw",
    bytes)` is sent as it is after the size prefix. Records the request headers it saw."""
    replies: list[Any] = []
    seen: list[Any] = []
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                (size,) = struct.unpack(">i", conn.recv(4, socket.MSG_WAITALL))
                request = conn.recv(size, socket.MSG_WAITALL)
                api_key, version, correlation = struct.unpack_from(">hhi", request)
                seen.append((api_key, version, correlation))
                kind, data = replies.pop(0)
                answer = data if kind == "raw" else struct.pack(">i", correlation) + b"\0" + data
                conn.sendall(struct.pack(">i", len(answer)) + answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    try:
        yield port, [replies, seen]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def encode_log_dirs(sizes: dict[str, list[int]]) -> bytes:
    response = log_dirs.DescribeLogDirsResponse(
        throttle_time=i32Timedelta.parse(datetime.timedelta(0)),
        results=(
            log_dirs.DescribeLogDirsResult(
                error_code=ErrorCode.none,
                log_dir="/data",
                topics=tuple(
                    log_dirs.DescribeLogDirsTopic(
                        name=name,  # type: ignore[arg-type]
                        partitions=tuple(
                            log_dirs.DescribeLogDirsPartition(
                                partition_index=i32(i),
                                partition_size=i64(size),
                                offset_lag=i64(0),
                                is_future_key=False,
                            )
                            for i, size in enumerate(partition_sizes)
                        ),
                    )
                    for name, partition_sizes in sizes.items()
                ),
            ),
        ),
    )
    out = io.BytesIO()
    entity_writer(log_dirs.DescribeLogDirsResponse)(out, response)
    return out.getvalue()


def test_describe_log_dirs_round_trip(scripted_broker: tuple[int, list[Any]]) -> None:
    port, (replies, seen) = scripted_broker
    replies.append(("body", encode_log_dirs({"orders": [100, 250], "audit": [7]})))
    answer = Transport().describe_log_dirs("127.0.0.1", port)
    assert seen == [(DESCRIBE_LOG_DIRS, 2, 1)]
    [result] = answer.results
    sizes = {str(t.name): [int(p.partition_size) for p in t.partitions] for t in result.topics}
    assert sizes == {"orders": [100, 250], "audit": [7]}


@pytest.mark.parametrize(
    "reply",
    [
        ("raw", struct.pack(">i", 99) + b"\0"),  # another request's answer
        ("body", b"\xff\xff"),  # a body that cannot be read
        ("raw", b""),  # an answer too short to hold a header
    ],
)
def test_unreadable_answers_are_wire_errors(
    scripted_broker: tuple[int, list[Any]], reply: tuple[str, bytes]
) -> None:
    port, (replies, _) = scripted_broker
    replies.append(reply)
    with pytest.raises(WireError):
        Transport().describe_log_dirs("127.0.0.1", port)


def test_nobody_listening_is_a_wire_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(WireError, match="DescribeLogDirs"):
        Transport().describe_log_dirs("127.0.0.1", port)
