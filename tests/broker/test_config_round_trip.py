"""Every broker setting survives the trip to server.properties and back: a subprocess broker
(EmbeddedBroker(mode="subprocess"), bench and soak brokers) runs with the config it was given,
not with the subset someone remembered to write out (it silently dropped connection limits,
fd caps and durations before)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from klamm.broker.config import (
    BrokerConfig,
    config_from_properties,
    config_to_properties,
    parse_properties,
)
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

# One config with every field away from its default.
EVERYTHING = BrokerConfig(
    host="127.0.0.2", port=19092, advertised_host="kafka.example", advertised_port=29092,
    data_dir=Path("/var/lib/klamm"), node_id=7, auto_create_topics=False, num_partitions=3,
    max_request_bytes=1 << 20, fetch_max_bytes=1 << 21, max_broker_partitions=500,
    metrics_host="0.0.0.0", metrics_port=9404, flush_policy="os",
    retention_check_interval_ms=1234, recovery_checkpoint_interval_ms=4321,
    group_initial_rebalance_delay_ms=10,
    group_min_session_timeout_ms=1000, group_max_session_timeout_ms=60_000,
    offsets_retention_ms=3 * 60_000, transaction_max_timeout_ms=60_000,
    transactional_id_expiration_ms=120_000, producer_id_expiration_ms=240_000,
    topic_defaults={"retention.ms": "1000", "cleanup.policy": "compact"},
    segment_open_files_max=64, security_protocol="SASL_SSL", sasl_mechanisms=("SCRAM-SHA-512",),
    sasl_users={"alice": 'p,w:d "quoted" \\ back', "bob": "x"}, scram_iterations=8192,
    ssl_certfile=Path("/etc/klamm/cert.pem"), ssl_keyfile=Path("/etc/klamm/key.pem"),
    ssl_cafile=Path("/etc/klamm/ca.pem"), ssl_client_auth="required",
    failed_authentication_delay_ms=5, max_connections=100, max_connections_per_ip=10,
    max_connections_per_ip_overrides={"10.0.0.1": 50, "::1": 5}, connections_max_idle_ms=1000,
    sasl_server_max_receive_size=4096, sasl_authentication_timeout_ms=2000,
    authorizer_class_name="org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    super_users=("User:admin", "User:ops"), allow_everyone_if_no_acl_found=True,
)  # fmt: skip


def _round_trip(config: BrokerConfig) -> BrokerConfig:
    text = "".join(f"{k}={v}\n" for k, v in config_to_properties(config).items())
    return config_from_properties(parse_properties(text), BrokerConfig())


def test_every_field_is_covered_by_the_sample() -> None:
    """A field added to BrokerConfig must be added to EVERYTHING (and so to the round trip)."""
    default = BrokerConfig()
    same = [f.name for f in dataclasses.fields(BrokerConfig)
            if getattr(EVERYTHING, f.name) == getattr(default, f.name)]  # fmt: skip
    assert same == []


def test_every_setting_survives_the_round_trip() -> None:
    assert _round_trip(EVERYTHING) == EVERYTHING


def test_defaults_write_only_the_listener() -> None:
    assert config_to_properties(BrokerConfig()) == {"listeners": "PLAINTEXT://127.0.0.1:9092"}


@given(st.dictionaries(st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True),
                       st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
                       max_size=3))  # fmt: skip
def test_any_password_survives(users: dict[str, str]) -> None:
    config = BrokerConfig(sasl_users=users)
    assert _round_trip(config).sasl_users == users


def test_a_subprocess_broker_runs_with_the_settings_it_was_given(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with EmbeddedBroker(data, mode="subprocess", max_request_bytes=1024) as broker:
        wire = Wire(broker.bootstrap)
        try:
            assert wire.request(3, 1, topics=[]).brokers[0].port == broker.port
            # A well-formed request over socket.request.max.bytes: the broker hangs up.
            wire.send(3, 1, topics=[{"name": "t" * 2000}])
            assert wire.is_closed()
        finally:
            wire.close()
