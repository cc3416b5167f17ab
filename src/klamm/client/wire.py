"""A small blocking Kafka client for the admin APIs librdkafka lacks.

confluent-kafka's AdminClient has no DescribeLogDirs (in the form the console reads),
ListTransactions, DescribeTransactions, DescribeProducers or WriteTxnMarkers; the web console
and `klamm transactions` send them through this module. It only frames: message bodies, and the
request header, come from kio (generated from Kafka's own JSON schemas); klamm.protocol is the
broker's side and this layer may not import it (tests/test_layering.py).

On the wire, one request per connection: an int32 size, request header v2 (v1 for a
non-flexible version: api key, version, correlation id 1, client id, then an empty tagged-field
section when flexible), the body; the answer is an int32 size, response header v1 (v0 when not
flexible: the correlation id, then tagged fields, skipped) and the body. PLAINTEXT or TLS only:
no SASL handshake, which each caller refuses in its own words before getting here.

Everything that can go wrong with the broker (unreachable, closes the connection, too slow,
an answer too large, for another request, or unreadable) raises `WireError`, one line naming
the broker and the API; the console shows it on its page, the CLI as its error line.
"""

from __future__ import annotations

import io
import socket
import ssl
import struct
from dataclasses import dataclass
from functools import cache
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import DecodeError
from kio.serial.readers import read_unsigned_varint
from kio.static.primitive import i16, i32

__all__ = [
    "DESCRIBE_LOG_DIRS",
    "DESCRIBE_PRODUCERS",
    "DESCRIBE_TRANSACTIONS",
    "LIST_TRANSACTIONS",
    "MAX_RESPONSE_BYTES",
    "NAMES",
    "VERSIONS",
    "WRITE_TXN_MARKERS",
    "RawClient",
    "WireError",
    "request_type",
]

WRITE_TXN_MARKERS = 27
DESCRIBE_LOG_DIRS = 35
DESCRIBE_PRODUCERS = 61
DESCRIBE_TRANSACTIONS = 65
LIST_TRANSACTIONS = 66
# The version asked of each API, one choice for every tool: each is served by Apache Kafka 3.x
# and 4.x and by klamm. DescribeLogDirs v2 is its first flexible version (Kafka 2.6+);
# WriteTxnMarkers v1 (Kafka 2.4+) because Kafka 4 removed v0; the others are their v0.
VERSIONS = {
    WRITE_TXN_MARKERS: 1,
    DESCRIBE_LOG_DIRS: 2,
    DESCRIBE_PRODUCERS: 0,
    DESCRIBE_TRANSACTIONS: 0,
    LIST_TRANSACTIONS: 0,
}
NAMES = {
    WRITE_TXN_MARKERS: "WriteTxnMarkers",
    DESCRIBE_LOG_DIRS: "DescribeLogDirs",
    DESCRIBE_PRODUCERS: "DescribeProducers",
    DESCRIBE_TRANSACTIONS: "DescribeTransactions",
    LIST_TRANSACTIONS: "ListTransactions",
}
# The largest answer accepted. DescribeLogDirs, the largest of these, is about 30 bytes per
# partition (a few MiB for 100,000 partitions); a size prefix beyond this is not a Kafka broker
# answering one of these requests, and reading it would only fill memory.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# One request per connection, so its correlation id is always the first one.
_CORRELATION_ID = 1
# A size prefix, then at least the response header's correlation id.
_MIN_RESPONSE_BYTES = 4


class WireError(Exception):
    """A broker that cannot be reached, or that answered with something unusable: one line,
    naming the broker and the API, to show as it is."""


@cache
def request_type(api_key: int) -> Any:
    """The kio class of `api_key`'s request at the version this module asks (VERSIONS)."""
    return load_request_schema(api_key, VERSIONS[api_key])


@cache
def _response_type(api_key: int) -> Any:
    return load_response_schema(api_key, VERSIONS[api_key])


@dataclass(frozen=True)
class RawClient:
    """Sends one request at a time, each on its own blocking connection (call it from a worker
    thread in async code). `tls` None means PLAINTEXT; `timeout_s` bounds the connect and each
    wait for answer bytes."""

    client_id: str
    tls: ssl.SSLContext | None = None
    timeout_s: float = 10.0

    def request(self, host: str, port: int, api_key: int, body: Any) -> Any:
        """Send `body` (an instance of `request_type(api_key)`) to host:port and return the
        decoded answer; WireError when there is none to return."""
        cls = request_type(api_key)
        if type(body) is not cls:
            raise TypeError(f"{NAMES[api_key]} v{VERSIONS[api_key]} takes a {cls.__qualname__}")
        where, api = f"{host}:{port}", NAMES[api_key]
        frame = _encode(api_key, self.client_id, body)
        try:
            with socket.create_connection((host, port), timeout=self.timeout_s) as raw:
                sock = self.tls.wrap_socket(raw, server_hostname=host) if self.tls else raw
                with sock:
                    sock.sendall(frame)
                    (size,) = struct.unpack(">i", _read(sock, 4))
                    if not _MIN_RESPONSE_BYTES <= size <= MAX_RESPONSE_BYTES:
                        raise WireError(f"broker {where} sent a {api} answer of {size} bytes")
                    answer = _read(sock, size)
        except TimeoutError:
            raise WireError(
                f"broker {where} did not answer {api} within {self.timeout_s:g} s"
            ) from None
        except EOFError:
            # A broker without the API typically just closes the connection (Tansu does).
            raise WireError(
                f"broker {where} closed the connection instead of answering {api}; "
                "it may not serve it"
            ) from None
        except OSError as exc:
            raise WireError(
                f"cannot reach broker {where} to ask {api}: {exc.strerror or exc}"
            ) from None
        (got,) = struct.unpack_from(">i", answer, 0)
        if got != _CORRELATION_ID:
            raise WireError(f"broker {where} answered request {got}, not {_CORRELATION_ID}")
        response = _response_type(api_key)
        try:
            position = _skip_tagged_fields(answer, 4) if response.__flexible__ else 4
            value, _ = entity_reader(response)(answer, position)
        except (DecodeError, ValueError, IndexError, struct.error) as exc:
            raise WireError(
                f"broker {where} sent a {api} answer that cannot be read: {exc}"
            ) from None
        return value


def _encode(api_key: int, client_id: str, body: Any) -> bytes:
    """The whole request frame: size prefix, request header, body."""
    flexible = request_type(api_key).__flexible__
    header_type = RequestHeaderV2 if flexible else RequestHeaderV1
    header = header_type(
        request_api_key=i16(api_key),
        request_api_version=i16(VERSIONS[api_key]),
        correlation_id=i32(_CORRELATION_ID),
        client_id=client_id,
    )
    out = io.BytesIO()
    out.write(b"\0\0\0\0")  # the size, filled in below
    entity_writer(header_type)(out, header)
    entity_writer(request_type(api_key))(out, body)
    frame = out.getbuffer()
    struct.pack_into(">i", frame, 0, len(frame) - 4)
    return bytes(frame)


def _read(sock: socket.socket, n: int) -> bytes:
    """Exactly n bytes; EOFError when the broker closes the connection first."""
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 65536))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def _skip_tagged_fields(answer: bytes, position: int) -> int:
    """Past a tagged-field section: kio's reader refuses tags it does not know, and a newer
    broker may send some, which a client must ignore (KIP-482)."""
    count, size = read_unsigned_varint(answer, position)
    position += size
    for _ in range(count):
        position += read_unsigned_varint(answer, position)[1]  # the tag
        length, size = read_unsigned_varint(answer, position)
        position += size + length
    if position > len(answer):
        raise ValueError("tagged fields run past the answer")
    return position
