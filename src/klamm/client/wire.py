"""A small blocking Kafka client for the admin APIs librdkafka lacks.

confluent-kafka's AdminClient has no DescribeLogDirs (in the form the console reads),
ListTransactions, DescribeTransactions, DescribeProducers or WriteTxnMarkers, and its DescribeAcls
drops the answer's error code (a user not allowed to describe ACLs would see none); the web
console and `klamm transactions` send them through this module. It only frames: message bodies,
and the request header, come from kio (generated from Kafka's own JSON schemas); klamm.protocol is
the broker's side and this layer may not import it (tests/test_layering.py).

On the wire, one request per connection: an int32 size, request header v2 (v1 for a
non-flexible version: api key, version, correlation id, client id, then an empty tagged-field
section when flexible), the body; the answer is an int32 size, response header v1 (v0 when not
flexible: the correlation id, then tagged fields, skipped) and the body. The request is the
connection's first (correlation id 1), or follows a SASL login (KIP-152): SaslHandshake v1
naming the mechanism, then SaslAuthenticate v2 carrying the tokens, PLAIN's one or SCRAM's two
(RFC 5802, computed by `scramp`), correlation ids 1, 2, ... in order. The listener kinds are
Kafka's: PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL, chosen from librdkafka's own settings by
`RawClient.from_config`, so every tool passes what it already gives librdkafka.

Everything that can go wrong with the broker (unreachable, closes the connection, too slow,
an answer too large, for another request, or unreadable) raises `WireError`, one line naming
the broker and the API; the console shows it on its page, the CLI as its error line.
"""

from __future__ import annotations

import io
import os
import socket
import ssl
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import DecodeError
from kio.serial.readers import read_unsigned_varint
from kio.static.primitive import i16, i32
from scramp import ScramClient, ScramException
from scramp.utils import saslprep

__all__ = [
    "DESCRIBE_ACLS",
    "DESCRIBE_LOG_DIRS",
    "DESCRIBE_PRODUCERS",
    "DESCRIBE_TRANSACTIONS",
    "LIST_TRANSACTIONS",
    "MAX_RESPONSE_BYTES",
    "NAMES",
    "SASL_AUTHENTICATE",
    "SASL_HANDSHAKE",
    "SASL_MECHANISMS",
    "VERSIONS",
    "WRITE_TXN_MARKERS",
    "RawClient",
    "SaslLogin",
    "WireConfigError",
    "WireError",
    "request_type",
]

SASL_HANDSHAKE = 17
WRITE_TXN_MARKERS = 27
DESCRIBE_ACLS = 29
DESCRIBE_LOG_DIRS = 35
SASL_AUTHENTICATE = 36
DESCRIBE_PRODUCERS = 61
DESCRIBE_TRANSACTIONS = 65
LIST_TRANSACTIONS = 66
# The version asked of each API, one choice for every tool: each is served by Apache Kafka 3.x
# and 4.x and by klamm. DescribeLogDirs v2 is its first flexible version (Kafka 2.6+);
# WriteTxnMarkers v1 (Kafka 2.4+) because Kafka 4 removed v0; the others are their v0.
# SaslHandshake v1 (Kafka 1.0+, KIP-152) moves the tokens into SaslAuthenticate requests, whose
# v2 (Kafka 2.4+) is flexible and carries an error message: the words a wrong password gets.
# DescribeAcls v1 (Kafka 2.0+, KIP-290) is the first with pattern types; Kafka 4 removed v0.
VERSIONS = {
    DESCRIBE_ACLS: 1,
    SASL_HANDSHAKE: 1,
    SASL_AUTHENTICATE: 2,
    WRITE_TXN_MARKERS: 1,
    DESCRIBE_LOG_DIRS: 2,
    DESCRIBE_PRODUCERS: 0,
    DESCRIBE_TRANSACTIONS: 0,
    LIST_TRANSACTIONS: 0,
}
NAMES = {
    DESCRIBE_ACLS: "DescribeAcls",
    SASL_HANDSHAKE: "SaslHandshake",
    SASL_AUTHENTICATE: "SaslAuthenticate",
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
# The mechanisms this client logs in with: those klamm's broker and every Kafka offers without
# a Kerberos or OAuth set-up (GSSAPI, OAUTHBEARER are left to librdkafka).
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# Each connection's first correlation id; a login's requests take the ones before the request's.
_FIRST_CORRELATION_ID = 1
# Kafka's security.protocol values: (TLS, SASL).
_PROTOCOLS = {
    "plaintext": (False, False),
    "ssl": (True, False),
    "sasl_plaintext": (False, True),
    "sasl_ssl": (True, True),
}
# A size prefix, then at least the response header's correlation id.
_MIN_RESPONSE_BYTES = 4


class WireError(Exception):
    """A broker that cannot be reached, that refused the login, or that answered with something
    unusable: one line, naming the broker and the API, to show as it is."""


class WireConfigError(WireError):
    """Settings this client cannot connect with (a SASL mechanism it does not speak, a missing
    user name): one line naming the setting, found before any connection."""


@dataclass(frozen=True)
class SaslLogin:
    """Who logs in, and how: `mechanism` is one of SASL_MECHANISMS."""

    mechanism: str
    username: str
    password: str = field(repr=False)


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
    thread in async code). `tls` None means no TLS; `sasl` None means no login; `timeout_s`
    bounds the connect and each wait for answer bytes."""

    client_id: str
    tls: ssl.SSLContext | None = None
    timeout_s: float = 10.0
    sasl: SaslLogin | None = None

    @classmethod
    def from_config(
        cls, client_id: str, conf: Mapping[str, Any], timeout_s: float = 10.0
    ) -> RawClient:
        """A client connecting as librdkafka would with `conf` (its property names:
        security.protocol, sasl.mechanism(s), sasl.username, sasl.password, ssl.ca.location,
        ssl.ca.pem, ssl.certificate.location/.pem, ssl.key.location/.pem, ssl.key.password,
        enable.ssl.certificate.verification, ssl.endpoint.identification.algorithm); other
        properties are librdkafka's alone and ignored. WireConfigError for what it cannot do."""
        protocol = str(conf.get("security.protocol", "plaintext")).lower()
        if protocol not in _PROTOCOLS:
            raise WireConfigError(f"unknown security.protocol {protocol.upper()!r}")
        use_tls, use_sasl = _PROTOCOLS[protocol]
        try:
            tls = _tls_context(conf) if use_tls else None
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise WireConfigError(
                f"cannot use the ssl.* settings: {_one_line(str(reason))}"
            ) from None
        return cls(client_id, tls, timeout_s, _sasl_login(conf) if use_sasl else None)

    def request(self, host: str, port: int, api_key: int, body: Any) -> Any:
        """Send `body` (an instance of `request_type(api_key)`) to host:port and return the
        decoded answer; WireError when there is none to return."""
        cls = request_type(api_key)
        if type(body) is not cls:
            raise TypeError(f"{NAMES[api_key]} v{VERSIONS[api_key]} takes a {cls.__qualname__}")
        where = f"{host}:{port}"
        try:
            raw = socket.create_connection((host, port), timeout=self.timeout_s)
        except TimeoutError:
            raise WireError(f"broker {where} did not accept a connection within "
                            f"{self.timeout_s:g} s to ask {NAMES[api_key]}") from None  # fmt: skip
        except OSError as exc:
            raise WireError(f"cannot reach broker {where} to ask {NAMES[api_key]}: "
                            f"{exc.strerror or exc}") from None  # fmt: skip
        with raw:
            connection = _Connection(raw, where, self.client_id, self.timeout_s)
            if self.tls is not None:
                connection.start_tls(self.tls, host, NAMES[api_key])
            try:
                if self.sasl is not None:
                    _login(connection, self.sasl)
                return connection.ask(api_key, body)
            finally:
                connection.close()


class _Connection:
    """One blocking connection to one broker, asking in order with correlation ids 1, 2, ...;
    every failure becomes one WireError line naming the broker and the API asked."""

    def __init__(self, sock: socket.socket, where: str, client_id: str, timeout_s: float):
        self.sock = sock
        self.where = where
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._correlation_id = _FIRST_CORRELATION_ID

    def start_tls(self, context: ssl.SSLContext, host: str, api: str) -> None:
        try:
            self.sock = context.wrap_socket(self.sock, server_hostname=host)
        except TimeoutError:
            raise WireError(f"broker {self.where} did not finish the TLS handshake within "
                            f"{self._timeout_s:g} s (to ask {api})") from None  # fmt: skip
        except OSError as exc:
            raise WireError(f"TLS with broker {self.where} failed (to ask {api}): "
                            f"{_one_line(str(exc.strerror or exc))}") from None  # fmt: skip

    def close(self) -> None:
        self.sock.close()

    def ask(self, api_key: int, body: Any) -> Any:
        """Send `body`, return the decoded answer."""
        where, api, correlation_id = self.where, NAMES[api_key], self._correlation_id
        self._correlation_id += 1
        frame = _encode(api_key, self._client_id, correlation_id, body)
        try:
            self.sock.sendall(frame)
            (size,) = struct.unpack(">i", _read(self.sock, 4))
            if not _MIN_RESPONSE_BYTES <= size <= MAX_RESPONSE_BYTES:
                raise WireError(f"broker {where} sent a {api} answer of {size} bytes")
            answer = _read(self.sock, size)
        except TimeoutError:
            raise WireError(
                f"broker {where} did not answer {api} within {self._timeout_s:g} s"
            ) from None
        except EOFError:
            # A broker without the API typically just closes the connection (Tansu does); a
            # SASL listener closes it on any request before a login.
            raise WireError(
                f"broker {where} closed the connection instead of answering {api}; "
                "it may not serve it"
                + ("" if correlation_id > _FIRST_CORRELATION_ID
                   else " (or it wants a SASL login: check security.protocol)")
            ) from None  # fmt: skip
        except OSError as exc:
            raise WireError(
                f"cannot reach broker {where} to ask {api}: {exc.strerror or exc}"
            ) from None
        (got,) = struct.unpack_from(">i", answer, 0)
        if got != correlation_id:
            raise WireError(f"broker {where} answered request {got}, not {correlation_id}")
        response = _response_type(api_key)
        try:
            position = _skip_tagged_fields(answer, 4) if response.__flexible__ else 4
            value, _ = entity_reader(response)(answer, position)
        except (DecodeError, ValueError, IndexError, struct.error) as exc:
            raise WireError(
                f"broker {where} sent a {api} answer that cannot be read: {exc}"
            ) from None
        return value


def _login(connection: _Connection, login: SaslLogin) -> None:
    """SaslHandshake, then SaslAuthenticate with each of the mechanism's tokens (KIP-152). A
    broker that refuses the mechanism or the password closes the connection after its answer,
    as Kafka does; its answer is the WireError's message."""
    where, mechanism = connection.where, login.mechanism
    handshake = connection.ask(SASL_HANDSHAKE, request_type(SASL_HANDSHAKE)(mechanism=mechanism))
    code = handshake.error_code
    if code == ErrorCode.unsupported_sasl_mechanism:
        offered = ", ".join(str(m) for m in handshake.mechanisms) or "none"
        raise WireError(f"broker {where} does not offer SASL {mechanism} (it offers {offered})")
    if code == ErrorCode.illegal_sasl_state:
        raise WireError(f"broker {where} does not expect a SASL login: is its listener "
                        "SASL_PLAINTEXT or SASL_SSL?")  # fmt: skip
    if code != ErrorCode.none:
        raise WireError(f"broker {where} refused SaslHandshake: {_code_name(code)}")

    def authenticate(token: bytes) -> bytes:
        answer = connection.ask(
            SASL_AUTHENTICATE, request_type(SASL_AUTHENTICATE)(auth_bytes=token)
        )
        if answer.error_code != ErrorCode.none:
            detail = _code_name(answer.error_code)
            if answer.error_message:
                detail += f": {_one_line(answer.error_message)}"
            raise WireError(f"broker {where} refused the SASL {mechanism} login of user "
                            f"{login.username!r}: {detail}")  # fmt: skip
        return bytes(answer.auth_bytes)

    if mechanism == "PLAIN":
        # RFC 4616: no authorization identity, then the user name and password.
        authenticate(b"\0" + login.username.encode() + b"\0" + login.password.encode())
        return
    try:
        scram = ScramClient([mechanism], login.username, login.password)
        server_first = authenticate(scram.get_client_first().encode())
        scram.set_server_first(server_first.decode())
        server_final = authenticate(scram.get_client_final().encode())
        scram.set_server_final(server_final.decode())
    except (ScramException, UnicodeDecodeError) as exc:
        # The broker's messages do not follow RFC 5802, or its signature does not prove that
        # it holds the user's key: not a broker to trust with the request.
        reason = str(exc.args[0]) if exc.args else str(exc)  # scramp appends its error code
        raise WireError(
            f"broker {where} failed the SASL {mechanism} exchange: {_one_line(reason)}"
        ) from None


def _code_name(code: Any) -> str:
    try:
        return ErrorCode(int(code)).name.upper()
    except ValueError:
        return f"error {int(code)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _flag(value: Any, default: bool) -> bool:
    """A librdkafka boolean property: a bool from Python, "true"/"false" from a command line."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("false", "0", "no", "off")


def _sasl_login(conf: Mapping[str, Any]) -> SaslLogin:
    # librdkafka takes both spellings; its default, GSSAPI, is one this client does not speak.
    mechanism = str(conf.get("sasl.mechanism", conf.get("sasl.mechanisms", "GSSAPI"))).upper()
    if mechanism not in SASL_MECHANISMS:
        raise WireConfigError(f"sasl.mechanism {mechanism} is not one this tool speaks "
                              f"({', '.join(SASL_MECHANISMS)})")  # fmt: skip
    username, password = conf.get("sasl.username"), conf.get("sasl.password")
    if not username or password is None:
        raise WireConfigError(f"SASL {mechanism} needs sasl.username and sasl.password")
    if mechanism != "PLAIN" and not _saslprep_keeps(str(username), str(password)):
        # Kafka derives a SCRAM user's keys from the password's UTF-8 bytes as given, and so
        # does librdkafka; scramp applies SASLprep (RFC 4013) first, so its proof could never
        # match. Refused here in words, rather than failed by the broker as a wrong password.
        raise WireConfigError(f"the SCRAM user name or password of {username!r} has characters "
                              "SASLprep would change (non-ASCII spaces, soft hyphens, "
                              "compatibility forms), which this tool cannot send as given; "
                              "use PLAIN")  # fmt: skip
    return SaslLogin(mechanism, str(username), str(password))


def _saslprep_keeps(*texts: str) -> bool:
    try:
        return all(saslprep(text) == text for text in texts)
    except ScramException:  # a prohibited character
        return False


def _tls_context(conf: Mapping[str, Any]) -> ssl.SSLContext:
    """librdkafka's ssl.* properties as a Python TLS context: the CA to trust (the system's by
    default), whether to verify the certificate and its host name (librdkafka checks both by
    default since 2.0), and a client certificate for mutual TLS."""
    context = ssl.create_default_context(
        cafile=conf.get("ssl.ca.location"), cadata=conf.get("ssl.ca.pem")
    )
    if str(conf.get("ssl.endpoint.identification.algorithm", "https")).lower() == "none":
        context.check_hostname = False
    if not _flag(conf.get("enable.ssl.certificate.verification"), True):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    password = conf.get("ssl.key.password")
    certificate, key = conf.get("ssl.certificate.location"), conf.get("ssl.key.location")
    if certificate:
        context.load_cert_chain(certificate, key, password)
    elif conf.get("ssl.certificate.pem"):
        # Python loads a certificate from files only: a private directory, gone at once.
        with tempfile.TemporaryDirectory() as folder:
            pem = os.path.join(folder, "client.pem")
            with open(os.open(pem, os.O_CREAT | os.O_WRONLY, 0o600), "w") as out:
                out.write(
                    str(conf["ssl.certificate.pem"]) + "\n" + str(conf.get("ssl.key.pem", ""))
                )
            context.load_cert_chain(pem, None, password)
    return context


def _encode(api_key: int, client_id: str, correlation_id: int, body: Any) -> bytes:
    """The whole request frame: size prefix, request header, body."""
    flexible = request_type(api_key).__flexible__
    header_type = RequestHeaderV2 if flexible else RequestHeaderV1
    header = header_type(
        request_api_key=i16(api_key),
        request_api_version=i16(VERSIONS[api_key]),
        correlation_id=i32(correlation_id),
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
