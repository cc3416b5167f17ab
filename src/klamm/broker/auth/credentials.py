"""SCRAM credentials (RFC 5802 §3) and the in-memory user store.

Passwords are never kept: at start-up each user's password is turned into one
`ScramCredential` per hash (a random salt, the iteration count, StoredKey and ServerKey), and
the password string is dropped. SCRAM needs nothing more. PLAIN, which receives the password in
clear, is checked by deriving the SCRAM-SHA-256 credential again with the stored salt and
comparing StoredKeys in constant time, so the broker's memory holds no password in any form it
could hand back.

Pure: no I/O, no clock; randomness comes from `secrets` (or an injected salt, for tests).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "HASHES",
    "MIN_ITERATIONS",
    "CredentialStore",
    "ScramCredential",
    "derive",
    "salted_password",
]

# SCRAM mechanism name -> hashlib name. Kafka's ScramMechanism has exactly these two.
HASHES: dict[str, str] = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}

# Kafka's ScramMechanism.minIterations: 4096 for both hashes (RFC 7677 §4 recommends at least
# 4096). Fewer is refused at configuration time rather than weakening every login.
MIN_ITERATIONS = 4096

# Salt length: 32 random bytes, far beyond RFC 5802's need for a unique salt per credential.
_SALT_BYTES = 32


@dataclass(frozen=True, slots=True)
class ScramCredential:
    """What the server keeps per user and hash (RFC 5802 §3: never SaltedPassword itself)."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def __repr__(self) -> str:  # keys are password-equivalent for SCRAM: keep them out of logs
        return f"ScramCredential(iterations={self.iterations})"


def salted_password(hash_name: str, password: str, salt: bytes, iterations: int) -> bytes:
    """Hi(Normalize(password), salt, i): PBKDF2 with HMAC of the hash (RFC 5802 §2.2).

    Normalize is SASLprep; like Kafka's ScramFormatter we use the UTF-8 bytes as given, which is
    what every client here sends (SASLprep leaves ASCII passwords unchanged)."""
    return hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)


def derive(
    mechanism: str, password: str, iterations: int = MIN_ITERATIONS, salt: bytes | None = None
) -> ScramCredential:
    hash_name = HASHES[mechanism]
    if iterations < MIN_ITERATIONS:
        raise ValueError(f"{mechanism} needs at least {MIN_ITERATIONS} iterations")
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    salted = salted_password(hash_name, password, salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", hash_name)
    return ScramCredential(
        salt=salt,
        iterations=iterations,
        stored_key=hashlib.new(hash_name, client_key).digest(),
        server_key=hmac.digest(salted, b"Server Key", hash_name),
    )


class CredentialStore:
    """Users and their SCRAM credentials, built once at start-up; read-only afterwards."""

    def __init__(
        self,
        users: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        iterations: int = MIN_ITERATIONS,
    ) -> None:
        pairs = users.items() if isinstance(users, Mapping) else users
        self._scram: dict[str, dict[str, ScramCredential]] = {}
        for name, password in pairs:
            self._scram[name] = {mech: derive(mech, password, iterations) for mech in HASHES}
        # A credential for no user: PLAIN checks an unknown name against it so that a missing
        # user costs the same PBKDF2 as a wrong password (no timing oracle for user names).
        self._decoy = derive("SCRAM-SHA-256", secrets.token_urlsafe(16), iterations)

    def __len__(self) -> int:
        return len(self._scram)

    def __contains__(self, name: object) -> bool:
        return name in self._scram

    def add_scram(self, name: str, mechanism: str, credential: ScramCredential) -> None:
        """Install a precomputed credential (as Kafka's `kafka-configs --add-config
        SCRAM-SHA-256=[salt=...,stored_key=...]` does); tests use it for RFC vectors."""
        if mechanism not in HASHES:
            raise ValueError(f"not a SCRAM mechanism: {mechanism}")
        self._scram.setdefault(name, {})[mechanism] = credential

    def scram(self, name: str, mechanism: str) -> ScramCredential | None:
        return self._scram.get(name, {}).get(mechanism)

    def check_password(self, name: str, password: str) -> bool:
        """PLAIN: does `password` belong to `name`? Constant-time in the password."""
        known = self._scram.get(name, {}).get("SCRAM-SHA-256")
        credential = known or self._decoy
        salted = salted_password("sha256", password, credential.salt, credential.iterations)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        match = hmac.compare_digest(hashlib.sha256(client_key).digest(), credential.stored_key)
        return match and known is not None
