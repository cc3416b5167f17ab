"""Who may see the console and who may change the cluster through it.

- Login (when configured): a session cookie set by the login form, or per request an
  `Authorization: Bearer <token>` / `Basic <user:password>` header for scripts. The cookie holds
  an HMAC of a secret made at start-up, so a restart logs everyone out and nothing is stored.
- Cross-site request forgery: every mutating request is a POST carrying a token that must equal
  the `klamm_csrf` cookie (double submit; another site can neither read the cookie nor set the
  field), and whose Origin, when the browser sends one, is this console. Cookies are
  SameSite=Strict besides. Bearer-token requests are exempt: a browser never adds that header
  on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

from .config import ConsoleConfig

SESSION_COOKIE = "klamm_session"
CSRF_COOKIE = "klamm_csrf"
CSRF_FIELD = "csrf"


class Guard:
    def __init__(self, config: ConsoleConfig) -> None:
        self._config = config
        self._secret = secrets.token_bytes(32)

    @property
    def login_required(self) -> bool:
        return self._config.login_required

    def session_value(self) -> str:
        return hmac.new(self._secret, b"session", hashlib.sha256).hexdigest()

    def check_credentials(self, user: str, password: str) -> bool:
        """The login form and basic auth: a token is accepted as the password of any user."""
        ok = False
        if self._config.token is not None:
            ok |= hmac.compare_digest(password.encode(), self._config.token.encode())
        if self._config.user is not None:
            name, secret = self._config.user
            ok |= hmac.compare_digest(user.encode(), name.encode()) & hmac.compare_digest(
                password.encode(), secret.encode()
            )
        return ok

    def bearer_ok(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return (
            scheme.lower() == "bearer"
            and self._config.token is not None
            and hmac.compare_digest(value.strip().encode(), self._config.token.encode())
        )

    def authenticated(self, request: Request) -> bool:
        if not self.login_required:
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if cookie and hmac.compare_digest(cookie, self.session_value()):
            return True
        if self.bearer_ok(request):
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return self.check_credentials(user, password)
        return False

    def csrf_ok(self, request: Request, form_token: str) -> bool:
        if self.bearer_ok(request):
            return True
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
            return False
        cookie = request.cookies.get(CSRF_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie, form_token)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)
