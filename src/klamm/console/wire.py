"""The three admin requests librdkafka does not offer: ListTransactions, DescribeTransactions,
DescribeProducers (KIP-664), sent by the console itself.

Message bodies come from kio (generated from Kafka's own JSON schemas); this module only frames
them: an int32 size, request header v2 (api key, version, correlation id, client id, no tagged
fields), the body; the response header v1 is the correlation id and tagged fields. One blocking
connection per request, in a worker thread; PLAINTEXT and SSL, not SASL (the transactions page
says so when the console logs in with SASL). Every API here is v0, which Apache Kafka 3.x and
4.x and klamm all serve.
"""

from __future__ import annotations

import io
import socket
import ssl
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
from kio.schema.types import TopicName
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import DecodeError
from kio.static.primitive import i32

DESCRIBE_LOG_DIRS = 35
LIST_TRANSACTIONS = 66
DESCRIBE_TRANSACTIONS = 65
DESCRIBE_PRODUCERS = 61
# The version of each API asked: v0 where it is the first version (flexible already), and
# DescribeLogDirs v2, its first flexible version (Kafka 2.6+).
VERSIONS = {DESCRIBE_LOG_DIRS: 2, LIST_TRANSACTIONS: 0, DESCRIBE_TRANSACTIONS: 0,
            DESCRIBE_PRODUCERS: 0}  # fmt: skip
NAMES = {
    DESCRIBE_LOG_DIRS: "DescribeLogDirs",
    LIST_TRANSACTIONS: "ListTransactions",
    DESCRIBE_TRANSACTIONS: "DescribeTransactions",
    DESCRIBE_PRODUCERS: "DescribeProducers",
}
CLIENT_ID = b"klamm-console"
# The largest answer accepted: these are a few KiB even for a busy cluster; a peer claiming more
# is not a Kafka broker answering these requests.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
# Seconds per connect and per answer.
TIMEOUT_S = 10.0


class WireError(Exception):
    """A broker that cannot be reached or sent something unreadable; shown as it is."""


@cache
def _request_type(api_key: int) -> Any:
    return load_request_schema(api_key, VERSIONS[api_key])


@cache
def _response_type(api_key: int) -> Any:
    return load_response_schema(api_key, VERSIONS[api_key])


@dataclass(frozen=True)
class Transport:
    """How to reach brokers: TLS or not, from the console's `ssl` setting."""

    tls: ssl.SSLContext | None = None

    @classmethod
    def from_settings(cls, ssl_settings: bool | Mapping[str, Any] | None) -> Transport:
        if not ssl_settings:
            return cls(None)
        options = ssl_settings if isinstance(ssl_settings, Mapping) else {}
        context = ssl.create_default_context(cafile=options.get("ca_location"))
        if options.get("reject_unauthorized") is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if options.get("check_hostname") is False:
            context.check_hostname = False
        if options.get("certificate_location"):
            context.load_cert_chain(options["certificate_location"], options.get("key_location"))
        return cls(context)

    def request(self, host: str, port: int, api_key: int, body: Any) -> Any:
        """Send one request to host:port and return its decoded answer."""
        payload = io.BytesIO()
        entity_writer(_request_type(api_key))(payload, body)
        correlation = 1
        version = VERSIONS[api_key]
        header = struct.pack(">hhih", api_key, version, correlation, len(CLIENT_ID)) + CLIENT_ID
        header += b"\0"  # every version asked is flexible: an empty tagged-field section
        frame = header + payload.getvalue()
        where = f"broker {host}:{port}"
        try:
            with socket.create_connection((host, port), timeout=TIMEOUT_S) as raw:
                sock: socket.socket = (
                    self.tls.wrap_socket(raw, server_hostname=host) if self.tls else raw
                )
                sock.sendall(struct.pack(">i", len(frame)) + frame)
                (size,) = struct.unpack(">i", _read(sock, 4))
                if not 5 <= size <= MAX_RESPONSE_BYTES:
                    raise WireError(f"{where} sent an answer of {size} bytes")
                answer = _read(sock, size)
        except (OSError, struct.error) as exc:
            # A broker without the API typically just closes the connection (Tansu does).
            raise WireError(
                f"{where} did not answer {NAMES[api_key]} ({exc}); it may not serve it"
            ) from None
        (got,) = struct.unpack_from(">i", answer, 0)
        if got != correlation:
            raise WireError(f"{where} answered request {got}, not {correlation}")
        try:
            position = _skip_tagged_fields(answer, 4)
            value, _ = entity_reader(_response_type(api_key))(answer, position)
        except (DecodeError, IndexError, ValueError, struct.error) as exc:
            raise WireError(f"{where} sent an answer that cannot be read: {exc}") from None
        return value

    def describe_log_dirs(self, host: str, port: int) -> Any:
        cls = _request_type(DESCRIBE_LOG_DIRS)
        return self.request(host, port, DESCRIBE_LOG_DIRS, cls(topics=None))

    def list_transactions(self, host: str, port: int) -> Any:
        cls = _request_type(LIST_TRANSACTIONS)
        return self.request(host, port, LIST_TRANSACTIONS, cls())

    def describe_transactions(self, host: str, port: int, ids: list[str]) -> Any:
        cls = _request_type(DESCRIBE_TRANSACTIONS)
        return self.request(host, port, DESCRIBE_TRANSACTIONS, cls(transactional_ids=tuple(ids)))

    def describe_producers(self, host: str, port: int, topic: str, partitions: list[int]) -> Any:
        request = DescribeProducersRequest(
            topics=(
                TopicRequest(
                    name=TopicName(topic), partition_indexes=tuple(i32(p) for p in partitions)
                ),
            )
        )
        return self.request(host, port, DESCRIBE_PRODUCERS, request)


def _read(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 65536))
        if not chunk:
            raise OSError("connection closed mid-answer")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _skip_tagged_fields(data: bytes, position: int) -> int:
    """Skip a tagged-field section (an unsigned varint count, then tag, size, bytes)."""
    count, position = _uvarint(data, position)
    for _ in range(count):
        _, position = _uvarint(data, position)
        size, position = _uvarint(data, position)
        position += size
    if position > len(data):
        raise ValueError("tagged fields run past the answer")
    return position


def _uvarint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
        if shift > 28:
            raise ValueError("varint longer than 5 bytes")
