"""Broker settings, with Kafka's names where Kafka has one.

`--config FILE` reads a Java-properties style file (`key=value`, `#` comments), as Kafka's
server.properties; command-line flags win over the file.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from klamm.storage import InvalidConfig, validate_topic_configs

FlushPolicy = Literal["fsync", "os"]
# Kafka's listener security protocols (`listeners=SASL_SSL://host:port`).
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SECURITY_PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    host: str = "127.0.0.1"
    port: int = 9092  # 0: pick a free port (tests)
    advertised_host: str | None = None  # None: the listen host
    advertised_port: int | None = None  # None: the bound port
    data_dir: Path = Path("data")
    node_id: int = 0
    # Kafka's auto.create.topics.enable (default true) and num.partitions (default 1).
    auto_create_topics: bool = True
    num_partitions: int = 1
    # Kafka's socket.request.max.bytes.
    max_request_bytes: int = 100 * 1024 * 1024
    # Kafka's fetch.max.bytes (55 MiB): the most one Fetch response carries over all its
    # partitions, whatever the request asks (the first batch still goes out whole, KIP-74).
    fetch_max_bytes: int = 55 * 1024 * 1024
    # --- topic creation limits (issue 11) ---
    # max.broker.partitions (KIP-578's name; Kafka never shipped a default): every partition
    # costs memory, joins fsync rounds and is opened at each start (~0.7 ms apiece here, so
    # 10,000 is ~7 s of start-up); file descriptors are bounded by the segment file cache, not
    # by this. 10,000 is 2.5x the ~4,000 partitions per broker Kafka's operators long used as a
    # ceiling.
    max_broker_partitions: int = 10_000
    # Prometheus `GET /metrics` listener; None: off. Port 0 picks a free port (tests).
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # "fsync": acks=all is answered after an fsync covering the append (group commit), and
    # consumers see data only once it is durable. "os": Kafka's page-cache-only behaviour.
    flush_policy: FlushPolicy = "fsync"
    # Kafka's log.retention.check.interval.ms (5 min).
    retention_check_interval_ms: int = 300_000
    # Kafka's log.flush.offset.checkpoint.interval.ms (1 min): how often every partition's
    # recovery point is written, so that recovery after a crash CRC-checks at most about this
    # long's writes (plus what no flush covered) rather than whole active segments. Each write
    # costs two fsyncs per partition written to since the last one.
    recovery_checkpoint_interval_ms: int = 60_000
    # Kafka's group.initial.rebalance.delay.ms (3 s).
    group_initial_rebalance_delay_ms: int = 3_000
    # Kafka's group.min/max.session.timeout.ms (6 s / 30 min).
    group_min_session_timeout_ms: int = 6_000
    group_max_session_timeout_ms: int = 1_800_000
    # Kafka's offsets.retention.minutes (7 days), in ms.
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    # Kafka's transaction.max.timeout.ms (15 min).
    transaction_max_timeout_ms: int = 900_000
    # Kafka's transactional.id.expiration.ms (7 days): a finished transactional id idle this long
    # is forgotten.
    transactional_id_expiration_ms: int = 7 * 24 * 3600 * 1000
    # Kafka's producer.id.expiration.ms (1 day): a partition forgets an idempotent producer that
    # has written nothing for this long (and has no open transaction there).
    producer_id_expiration_ms: int = 24 * 3600 * 1000
    # Topic-level defaults (Kafka's log.* broker settings), by topic config name.
    topic_defaults: dict[str, str] = field(default_factory=dict)
    # --- file descriptors (klamm-specific; Kafka keeps one fd per segment for ever) ---
    # klamm.log.segment.open.files.max: segment files kept open (LRU), active ones included;
    # others are reopened on demand. None (the default): a quarter of the process's fd limit,
    # as raised at start (256 of the common 1024, 5000 of a 20000 hard limit), leaving the rest
    # to connections; a set value is lowered to that quarter too. Partitions written at once
    # beyond the capacity make the cache reopen files on every append and flush, so the
    # default grows with what the system allows rather than staying at 256.
    segment_open_files_max: int | None = None
    # --- security (klamm.broker.auth) ---
    # The listener's protocol: SASL_* authenticate every connection, *SSL encrypt it.
    security_protocol: SecurityProtocol = "PLAINTEXT"
    # Kafka's sasl.enabled.mechanisms (Kafka's default is GSSAPI, which klamm lacks).
    sasl_mechanisms: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    # user -> password. Turned into salted SCRAM keys when the broker starts; repr=False keeps
    # passwords out of any log line that prints the config.
    sasl_users: dict[str, str] = field(default_factory=dict, repr=False)
    # PBKDF2 iterations of the derived SCRAM credentials (Kafka's minimum, 4096).
    scram_iterations: int = 4096
    # PEM files of an SSL/SASL_SSL listener; ssl_cafile + ssl_client_auth for mutual TLS.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_cafile: Path | None = None
    ssl_client_auth: Literal["none", "requested", "required"] = "none"
    # Kafka's connection.failed.authentication.delay.ms: a failed login's error response, and
    # the close after it, wait this long (KAFKA-10798), which slows password guessing.
    failed_authentication_delay_ms: int = 100
    # --- connection limits (klamm.broker.connection, klamm.broker.connections) ---
    # Kafka's max.connections and max.connections.per.ip: Integer.MAX_VALUE, no limit, as in
    # Kafka. A connection over a limit is closed right after accept, with a WARNING.
    max_connections: int = 2**31 - 1
    max_connections_per_ip: int = 2**31 - 1
    # Kafka's max.connections.per.ip.overrides (`ip:count,ip:count`): per-address exceptions.
    # klamm takes IP addresses only (Kafka also resolves host names, once, at start-up).
    max_connections_per_ip_overrides: dict[str, int] = field(default_factory=dict)
    # Kafka's connections.max.idle.ms (10 min): a connection that moves no byte for this long
    # (and has no request in progress) is closed; negative: never.
    connections_max_idle_ms: int = 600_000
    # Kafka's sasl.server.max.receive.size (512 KiB): the largest frame accepted before a
    # client has authenticated, so an anonymous peer cannot make the broker buffer 100 MiB.
    sasl_server_max_receive_size: int = 524_288
    # A SASL_* connection not authenticated this long after it was accepted is closed (Kafka
    # has no such bound: an unauthenticated peer that keeps a byte moving stays for ever).
    # 30 s is Kafka clients' request.timeout.ms: a client has given up on its own by then;
    # a real login takes a few round trips. Negative: never.
    sasl_authentication_timeout_ms: int = 30_000
    # --- authorization (klamm.broker.authorizer) ---
    # Kafka's authorizer.class.name: empty (the default) means no authorizer, everything is
    # allowed and the ACL APIs answer SECURITY_DISABLED; AUTHORIZER_CLASSES turn it on.
    authorizer_class_name: str = ""
    # Kafka's super.users (`User:a;User:b`): principals allowed everything, whatever the ACLs.
    super_users: tuple[str, ...] = ()
    # Kafka's allow.everyone.if.no.acl.found (false): a resource no ACL matches is denied.
    allow_everyone_if_no_acl_found: bool = False

    @property
    def authorizer_enabled(self) -> bool:
        return bool(self.authorizer_class_name)

    @property
    def sasl_enabled(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def tls_enabled(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def advertised(self) -> tuple[str, int]:
        return (self.advertised_host or self.host, self.advertised_port or self.port)

    def replace(self, **changes: object) -> BrokerConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


# server.properties keys we understand, mapped to BrokerConfig fields.
_PROPERTY_FIELDS: dict[str, tuple[str, Callable[[str], object]]] = {
    "node.id": ("node_id", int),
    "broker.id": ("node_id", int),
    "log.dirs": ("data_dir", Path),
    "log.dir": ("data_dir", Path),
    "auto.create.topics.enable": ("auto_create_topics", lambda v: v.lower() == "true"),
    "num.partitions": ("num_partitions", int),
    "socket.request.max.bytes": ("max_request_bytes", int),
    "fetch.max.bytes": ("fetch_max_bytes", lambda v: _at_least(v, 1024)),
    "max.broker.partitions": ("max_broker_partitions", int),
    "klamm.metrics.port": ("metrics_port", int),
    "klamm.metrics.host": ("metrics_host", str),
    "log.retention.check.interval.ms": ("retention_check_interval_ms", int),
    "log.flush.offset.checkpoint.interval.ms": (
        "recovery_checkpoint_interval_ms",
        lambda v: _at_least(v, 1),
    ),
    "group.initial.rebalance.delay.ms": ("group_initial_rebalance_delay_ms", int),
    "group.min.session.timeout.ms": ("group_min_session_timeout_ms", int),
    "group.max.session.timeout.ms": ("group_max_session_timeout_ms", int),
    "offsets.retention.minutes": ("offsets_retention_ms", lambda v: _at_least(v, 1) * 60_000),
    "transaction.max.timeout.ms": ("transaction_max_timeout_ms", int),
    "transactional.id.expiration.ms": ("transactional_id_expiration_ms", int),
    "producer.id.expiration.ms": ("producer_id_expiration_ms", int),
    "klamm.flush.policy": ("flush_policy", lambda v: _one_of(v, ("fsync", "os"))),
    "klamm.log.segment.open.files.max": ("segment_open_files_max", lambda v: _at_least(v, 1)),
    "sasl.enabled.mechanisms": ("sasl_mechanisms", lambda v: _mechanisms(v)),
    "klamm.sasl.scram.iterations": ("scram_iterations", int),
    "connection.failed.authentication.delay.ms": ("failed_authentication_delay_ms", int),
    # connection limits
    "max.connections": ("max_connections", lambda v: _at_least(v, 0)),
    "max.connections.per.ip": ("max_connections_per_ip", lambda v: _at_least(v, 0)),
    "max.connections.per.ip.overrides": ("max_connections_per_ip_overrides", lambda v: _per_ip(v)),
    "connections.max.idle.ms": ("connections_max_idle_ms", int),
    "sasl.server.max.receive.size": ("sasl_server_max_receive_size", lambda v: _at_least(v, 1)),
    "klamm.sasl.authentication.timeout.ms": ("sasl_authentication_timeout_ms", int),
    "ssl.certfile": ("ssl_certfile", Path),
    "ssl.keyfile": ("ssl_keyfile", Path),
    "ssl.cafile": ("ssl_cafile", Path),
    "ssl.client.auth": ("ssl_client_auth", lambda v: _one_of(v, ("none", "requested", "required"))),
    # authorization
    "authorizer.class.name": ("authorizer_class_name", lambda v: _authorizer_class(v)),
    "super.users": ("super_users", lambda v: parse_super_users(v)),
    "allow.everyone.if.no.acl.found": ("allow_everyone_if_no_acl_found", lambda v: _bool(v)),
}

# authorizer.class.name values that turn on klamm's StandardAuthorizer: Kafka's (KRaft) and its
# predecessor's (ZooKeeper mode, same semantics), so a Kafka server.properties works unchanged.
AUTHORIZER_CLASSES = (
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
)

# Kafka's ServerTopicConfigSynonyms: the broker-level name of each topic config. In
# server.properties it sets that config's default for every topic; a broker's DescribeConfigs
# shows the defaults under these names.
TOPIC_CONFIG_SYNONYMS = {
    "cleanup.policy": "log.cleanup.policy",
    "compression.type": "compression.type",
    "delete.retention.ms": "log.cleaner.delete.retention.ms",
    "file.delete.delay.ms": "log.segment.delete.delay.ms",
    "flush.messages": "log.flush.interval.messages",
    "flush.ms": "log.flush.interval.ms",
    "index.interval.bytes": "log.index.interval.bytes",
    "max.compaction.lag.ms": "log.cleaner.max.compaction.lag.ms",
    "max.message.bytes": "message.max.bytes",
    "message.timestamp.after.max.ms": "log.message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms": "log.message.timestamp.before.max.ms",
    "message.timestamp.type": "log.message.timestamp.type",
    "min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
    "min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms",
    "min.insync.replicas": "min.insync.replicas",
    "preallocate": "log.preallocate",
    "retention.bytes": "log.retention.bytes",
    "retention.ms": "log.retention.ms",
    "segment.bytes": "log.segment.bytes",
    "segment.index.bytes": "log.index.size.max.bytes",
    "segment.jitter.ms": "log.roll.jitter.ms",
    "segment.ms": "log.roll.ms",
    "unclean.leader.election.enable": "unclean.leader.election.enable",
}
_TOPIC_DEFAULT_KEYS = {broker: topic for topic, broker in TOPIC_CONFIG_SYNONYMS.items()}
# Kafka's coarser retention settings; log.retention.ms wins over minutes, minutes over hours.
_RETENTION_UNITS_MS = {"log.retention.hours": 3_600_000, "log.retention.minutes": 60_000}


class ConfigFileError(ValueError):
    pass


def parse_properties(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if sep <= 0:
            raise ConfigFileError(f"line {number}: expected key=value, got {raw!r}")
        props[line[:sep].strip()] = line[sep + 1 :].strip()
    return props


def config_from_properties(props: dict[str, str], base: BrokerConfig) -> BrokerConfig:
    changes: dict[str, object] = {}
    topic_defaults = dict(base.topic_defaults)
    users = dict(base.sasl_users)
    for key, value in props.items():
        if key in _PROPERTY_FIELDS:
            name, convert = _PROPERTY_FIELDS[key]
            try:
                changes[name] = convert(value)
            except ConfigFileError:
                raise
            except ValueError as exc:
                raise ConfigFileError(f"{key}: invalid value {value!r}") from exc
        elif key in _TOPIC_DEFAULT_KEYS:
            topic = _TOPIC_DEFAULT_KEYS[key]
            try:  # Kafka's floors hold for broker defaults too (log.segment.bytes >= 1 MiB)
                validate_topic_configs({topic: value})
            except InvalidConfig as exc:
                raise ConfigFileError(
                    str(exc).replace(f"configuration {topic}:", f"configuration {key}:")
                ) from None
            topic_defaults[topic] = value
        elif key in _RETENTION_UNITS_MS:
            if "log.retention.ms" in props or (
                key == "log.retention.hours" and "log.retention.minutes" in props
            ):
                continue
            try:
                topic_defaults["retention.ms"] = str(int(value) * _RETENTION_UNITS_MS[key])
            except ValueError as exc:
                raise ConfigFileError(f"{key}: invalid value {value!r}") from exc
        elif key == "listeners":
            protocol, _, address = value.rpartition("://")
            host, _, port = address.rpartition(":")
            changes["host"], changes["port"] = host or "127.0.0.1", int(port)
            if protocol:  # klamm serves one listener; its name must be a security protocol
                if protocol.upper() not in SECURITY_PROTOCOLS:
                    raise ConfigFileError(
                        f"listeners: unknown security protocol {protocol!r}; "
                        f"expected one of {', '.join(SECURITY_PROTOCOLS)}"
                    )
                changes["security_protocol"] = protocol.upper()
        elif key == "klamm.sasl.users":
            users.update(parse_users(value))
        elif key.endswith("sasl.jaas.config"):
            # Kafka's PlainLoginModule syntax: user_NAME="password" entries declare users
            # (listener.name.sasl_plaintext.plain.sasl.jaas.config and friends).
            users.update(parse_jaas_users(value))
        elif key == "advertised.listeners":
            host, _, port = value.rpartition("//")[2].rpartition(":")
            changes["advertised_host"], changes["advertised_port"] = host, int(port)
        else:
            raise ConfigFileError(f"unknown broker setting {key!r}")
    changes["topic_defaults"] = topic_defaults
    changes["sasl_users"] = users
    return base.replace(**changes)


def config_to_properties(config: BrokerConfig) -> dict[str, str]:
    """The settings of `config` that differ from the defaults, as server.properties entries
    that `config_from_properties` reads back into the same config (a broker started in another
    process with them behaves as this config says; tests/broker/test_config_round_trip.py holds
    every field to it)."""
    default = BrokerConfig()
    props: dict[str, str] = {
        "listeners": f"{config.security_protocol}://{config.host}:{config.port}",
    }
    if config.advertised_host is not None or config.advertised_port is not None:
        host, port = config.advertised
        props["advertised.listeners"] = f"{config.security_protocol}://{host}:{port}"
    written: set[str] = set()
    for key, (name, _) in _PROPERTY_FIELDS.items():
        value = getattr(config, name)
        if name in written or value == getattr(default, name):
            continue  # a field with two names (node.id, broker.id) is written under the first
        written.add(name)
        props[key] = _property_text(name, value)
    for topic, value in config.topic_defaults.items():
        props[TOPIC_CONFIG_SYNONYMS[topic]] = value
    if config.sasl_users:  # the JAAS form carries any password, ',' and ':' included
        users = " ".join(f"user_{n}={_jaas_quote(pw)}" for n, pw in config.sasl_users.items())
        props["sasl.jaas.config"] = f"PlainLoginModule required {users};"
    return props


def _property_text(name: str, value: object) -> str:
    """A field's value as its property's text (the converter's input in _PROPERTY_FIELDS)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if name == "super_users":
        return ";".join(value)  # type: ignore[arg-type]
    if name == "offsets_retention_ms":
        return str(int(value) // 60_000)  # type: ignore[call-overload]
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, dict):
        return ",".join(f"{key}:{limit}" for key, limit in value.items())
    return str(value)


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _authorizer_class(value: str) -> str:
    name = value.strip()
    if name and name not in AUTHORIZER_CLASSES:
        raise ConfigFileError(
            f"authorizer.class.name: klamm has no authorizer {name!r}; "
            f"use {' or '.join(AUTHORIZER_CLASSES)} (klamm's StandardAuthorizer), or leave it empty"
        )
    return name


def parse_super_users(value: str) -> tuple[str, ...]:
    """Kafka's super.users: principals separated by semicolons, each `Type:name`."""
    users = tuple(u.strip() for u in value.split(";") if u.strip())
    for user in users:
        kind, sep, name = user.partition(":")
        if not (kind and sep and name):
            raise ConfigFileError(
                f"super.users: {user!r} is not a principal; expected Type:name (User:admin), "
                "several separated by ';'"
            )
    return users


def _bool(value: str) -> bool:
    """Kafka's boolean settings: true or false, in any case."""
    if value.strip().lower() not in ("true", "false"):
        raise ValueError(value)
    return value.strip().lower() == "true"


def _at_least(value: str, minimum: int) -> int:
    """An int setting with Kafka's `atLeast` validator."""
    number = int(value)
    if number < minimum:
        raise ValueError(value)
    return number


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(value)
    return value


def _per_ip(value: str) -> dict[str, int]:
    """`10.0.0.1:100,::1:50` -> {address: limit}; addresses normalised as peers are reported."""
    import ipaddress

    limits: dict[str, int] = {}
    for entry in value.split(","):
        if not entry.strip():
            continue
        address, _, count = entry.strip().rpartition(":")
        limits[str(ipaddress.ip_address(address.strip("[]")))] = _at_least(count, 0)
    return limits


def _mechanisms(value: str) -> tuple[str, ...]:
    from klamm.broker.auth import MECHANISMS  # the ones klamm implements

    names = tuple(m.strip().upper() for m in value.split(",") if m.strip())
    if not names or set(names) - set(MECHANISMS):
        raise ValueError(value)
    return names


def parse_users(value: str) -> dict[str, str]:
    """`alice:secret,bob:pw` (klamm.sasl.users, --sasl-user): a password may contain ':' but
    not ','; use the JAAS form for such passwords."""
    users: dict[str, str] = {}
    for entry in value.split(","):
        if not entry.strip():
            continue
        name, sep, password = entry.strip().partition(":")
        if not sep or not name:
            raise ConfigFileError("klamm.sasl.users: expected NAME:PASSWORD entries")
        users[name] = password
    return users


_JAAS_USER = re.compile(r'\buser_([^\s=]+)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_jaas_users(value: str) -> dict[str, str]:
    return {name: re.sub(r"\\(.)", r"\1", pw) for name, pw in _JAAS_USER.findall(value)}
