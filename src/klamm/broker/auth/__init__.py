"""Authentication: SASL mechanisms as pure state machines, credentials, and TLS contexts.

    errors.py         AuthenticationFailed, IllegalSaslState
    credentials.py    ScramCredential, CredentialStore (salted keys only, never passwords)
    plain.py          PlainServer: SASL/PLAIN (RFC 4616)
    scram.py          ScramServer: SCRAM-SHA-256/512 (RFC 5802/7677, Kafka's KIP-84)
    authenticator.py  SaslAuthenticator: the per-connection Kafka SASL exchange (KIP-43/152)
    tls.py            the listener's ssl.SSLContext

Nothing here touches a socket: the connection feeds bytes in and writes what comes out.
"""

from __future__ import annotations

from klamm.broker.auth.authenticator import MECHANISMS, SaslAuthenticator, SaslState
from klamm.broker.auth.credentials import CredentialStore, ScramCredential
from klamm.broker.auth.errors import AuthenticationFailed, IllegalSaslState
from klamm.broker.auth.plain import PlainServer
from klamm.broker.auth.scram import ScramServer

__all__ = [
    "MECHANISMS",
    "AuthenticationFailed",
    "CredentialStore",
    "IllegalSaslState",
    "PlainServer",
    "SaslAuthenticator",
    "SaslState",
    "ScramCredential",
    "ScramServer",
]
