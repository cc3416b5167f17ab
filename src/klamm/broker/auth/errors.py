"""Why an authentication exchange failed, split by what the client may be told.

    AuthenticationFailed       the exchange failed; `str(exc)` is safe to send to the client
    └── IllegalSaslState       a message arrived that the exchange does not expect now

Messages never carry a password, and never say whether a user exists: Kafka answers an unknown
user and a wrong password with the same text, so a client cannot probe for user names.
"""

from __future__ import annotations

__all__ = ["AuthenticationFailed", "IllegalSaslState"]


class AuthenticationFailed(Exception):
    """SASL_AUTHENTICATION_FAILED (58): the client is told `str(self)`, then disconnected."""


class IllegalSaslState(AuthenticationFailed):
    """ILLEGAL_SASL_STATE (34): a token or request out of order."""
