"""The TLS context of an SSL or SASL_SSL listener, from PEM files.

Kafka reads JKS/PKCS12 keystores; Python's ssl module reads PEM, so klamm takes a certificate
chain file and a key file (`ssl.certfile`, `ssl.keyfile`). `ssl.cafile` plus
`ssl.client.auth=required|requested` asks clients for a certificate signed by that CA (mutual
TLS), as Kafka's `ssl.client.auth` does. Called once at start-up; a bad file fails the start.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

__all__ = ["ClientAuth", "server_context"]

ClientAuth = Literal["none", "requested", "required"]

_VERIFY = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def server_context(
    certfile: Path,
    keyfile: Path | None = None,
    cafile: Path | None = None,
    client_auth: ClientAuth = "none",
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # Kafka 4 enables TLSv1.2 and TLSv1.3 only (ssl.enabled.protocols); so do we.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(certfile), None if keyfile is None else str(keyfile))
    if cafile is not None:
        context.load_verify_locations(str(cafile))
    if client_auth != "none" and cafile is None:
        raise ValueError(f"ssl.client.auth={client_auth} needs ssl.cafile to verify clients")
    context.verify_mode = _VERIFY[client_auth]
    return context
