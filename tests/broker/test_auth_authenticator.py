"""The per-connection Kafka SASL exchange (SaslAuthenticator) and the security settings."""

from __future__ import annotations

import pytest

from klamm.broker.auth import (
    AuthenticationFailed,
    CredentialStore,
    IllegalSaslState,
    SaslAuthenticator,
    SaslState,
)
from klamm.broker.config import (
    BrokerConfig,
    ConfigFileError,
    config_from_properties,
    parse_properties,
)
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode

STORE = CredentialStore({"alice": "secret"})
ALL = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def test_plain_login_with_handshake_v1() -> None:
    sasl = SaslAuthenticator(ALL, STORE)
    assert sasl.check_request(ApiKey.API_VERSIONS) is None
    sasl.api_versions_answered()
    assert sasl.state is SaslState.HANDSHAKE
    assert sasl.check_request(ApiKey.API_VERSIONS) is None  # a retry at a lower version
    assert sasl.handshake(1, "PLAIN") == ErrorCode.none
    assert sasl.state is SaslState.AUTHENTICATE and not sasl.expects_raw_token
    assert sasl.check_request(ApiKey.SASL_AUTHENTICATE) is None
    assert sasl.authenticate(b"\x00alice\x00secret") == b""
    assert sasl.complete and sasl.principal == "alice"
    assert sasl.check_request(ApiKey.PRODUCE) is None


def test_handshake_v0_means_raw_tokens() -> None:
    sasl = SaslAuthenticator(ALL, STORE)
    assert sasl.handshake(0, "PLAIN") == ErrorCode.none
    assert sasl.expects_raw_token
    sasl.authenticate(b"\x00alice\x00secret")
    assert sasl.complete


@pytest.mark.parametrize("api_key", [ApiKey.METADATA, ApiKey.PRODUCE, ApiKey.SASL_AUTHENTICATE])
def test_other_requests_before_the_handshake_fail(api_key: int) -> None:
    sasl = SaslAuthenticator(ALL, STORE)
    reason = sasl.check_request(api_key)
    assert reason is not None and "during SASL handshake" in reason
    assert sasl.state is SaslState.FAILED and sasl.failure == reason


def test_only_sasl_authenticate_after_the_handshake() -> None:
    sasl = SaslAuthenticator(ALL, STORE)
    sasl.handshake(1, "SCRAM-SHA-256")
    reason = sasl.check_request(ApiKey.METADATA)
    assert reason is not None and "METADATA during SASL authentication" in reason
    assert sasl.state is SaslState.FAILED


def test_unsupported_mechanism_lists_the_enabled_ones() -> None:
    sasl = SaslAuthenticator(("PLAIN", "SCRAM-SHA-512"), STORE)
    assert sasl.handshake(1, "SCRAM-SHA-256") == ErrorCode.unsupported_sasl_mechanism
    assert sasl.enabled == ["PLAIN", "SCRAM-SHA-512"]
    assert sasl.state is SaslState.FAILED and "SCRAM-SHA-256" in (sasl.failure or "")


def test_wrong_password_fails_the_exchange() -> None:
    sasl = SaslAuthenticator(ALL, STORE)
    sasl.handshake(1, "PLAIN")
    with pytest.raises(AuthenticationFailed, match="Invalid username or password"):
        sasl.authenticate(b"\x00alice\x00nope")
    assert sasl.state is SaslState.FAILED and "nope" not in (sasl.failure or "")


def test_after_success_handshake_and_authenticate_are_illegal_but_harmless() -> None:
    sasl = SaslAuthenticator(ALL, STORE)
    sasl.handshake(1, "PLAIN")
    sasl.authenticate(b"\x00alice\x00secret")
    assert sasl.handshake(1, "PLAIN") == ErrorCode.illegal_sasl_state
    with pytest.raises(IllegalSaslState):
        sasl.authenticate(b"\x00alice\x00secret")
    assert sasl.complete and sasl.failure is None


def test_token_before_handshake_is_illegal() -> None:
    sasl = SaslAuthenticator(ALL, STORE)
    with pytest.raises(IllegalSaslState):
        sasl.authenticate(b"x")
    assert sasl.state is SaslState.FAILED


def test_unknown_mechanism_in_config_is_refused() -> None:
    with pytest.raises(ValueError, match="GSSAPI"):
        SaslAuthenticator(("GSSAPI",), STORE)


# --- settings -------------------------------------------------------------------------------


def _config(text: str) -> BrokerConfig:
    return config_from_properties(parse_properties(text), BrokerConfig())


def test_listener_protocol_and_ssl_files() -> None:
    config = _config(
        "listeners=SASL_SSL://127.0.0.1:9093\nssl.certfile=/c.pem\nssl.keyfile=/k.pem\n"
        "sasl.enabled.mechanisms=SCRAM-SHA-512, plain\nklamm.sasl.scram.iterations=8192\n"
    )
    assert (config.host, config.port, config.security_protocol) == ("127.0.0.1", 9093, "SASL_SSL")
    assert config.sasl_enabled and config.tls_enabled
    assert str(config.ssl_certfile) == "/c.pem" and str(config.ssl_keyfile) == "/k.pem"
    assert config.sasl_mechanisms == ("SCRAM-SHA-512", "PLAIN")
    assert config.scram_iterations == 8192
    plain = _config("listeners=PLAINTEXT://:9092\n")
    assert not plain.sasl_enabled and not plain.tls_enabled


def test_users_from_klamm_key_and_jaas() -> None:
    config = _config(
        "klamm.sasl.users=alice:se:cret,bob:pw\n"
        "listener.name.sasl_plaintext.plain.sasl.jaas.config="
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="admin" password="admin-secret" user_admin="admin-secret" '
        'user_carol="q\\"uote";\n'
    )
    assert config.sasl_users == {
        "alice": "se:cret",
        "bob": "pw",
        "admin": "admin-secret",
        "carol": 'q"uote',
    }
    assert "se:cret" not in repr(config)


@pytest.mark.parametrize(
    "text",
    [
        "listeners=HTTP://127.0.0.1:1\n",
        "sasl.enabled.mechanisms=GSSAPI\n",
        "klamm.sasl.users=nopassword\n",
        "ssl.client.auth=maybe\n",
    ],
)
def test_bad_security_settings(text: str) -> None:
    with pytest.raises(ConfigFileError):
        _config(text)
