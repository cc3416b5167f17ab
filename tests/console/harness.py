"""A console served from a thread, and a plain HTTP helper, for the console's tests."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from klamm.console import ConsoleConfig, ConsoleServer


class RunningConsole:
    """A ConsoleServer on its own event loop in a thread, for synchronous tests."""

    def __init__(self, config: ConsoleConfig) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = ConsoleServer(config)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._server.start())
        self.url = self._server.url.rstrip("/")

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def stop(self) -> None:
        try:
            self._call(self._server.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


@dataclass
class Reply:
    status: int
    body: str
    headers: Any


def http(url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
         ) -> Reply:  # fmt: skip
    """GET (or POST a url-encoded form) without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return Reply(response.status, response.read().decode(), response.headers)
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read().decode(), exc.headers)


class Session:
    """A browser-like HTTP session: the CSRF cookie from a first page, sent back with the token
    on every form."""

    def __init__(self, console: RunningConsole) -> None:
        self.url = console.url
        first = http(self.url + "/topics")
        self.cookie = first.headers["set-cookie"].split(";")[0]
        self.token = self.cookie.partition("=")[2]

    def get(self, path: str) -> Reply:
        return http(self.url + path, headers={"cookie": self.cookie})

    def post(self, path: str, **form: str) -> str:
        """POST a form; the redirect target (carrying `msg=` or `err=`)."""
        reply = http(self.url + path, {**form, "csrf": self.token}, {"cookie": self.cookie})
        assert reply.status == 303, (reply.status, reply.body)
        return str(reply.headers["location"])
