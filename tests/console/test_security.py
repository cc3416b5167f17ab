"""The console's safety rules over plain HTTP: login, CSRF, read-only, loopback by default."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import confluent_kafka
import pytest

from klamm.console import ConsoleConfig, ConsoleConfigError
from klamm.console.config import is_loopback
from klamm.testing import EmbeddedBroker
from tests.console.harness import RunningConsole, http


def topics_of(broker: EmbeddedBroker) -> set[str]:
    admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": broker.bootstrap})
    return set(admin.list_topics(timeout=10).topics)


def csrf_cookie_and_token(console: RunningConsole) -> tuple[str, str]:
    reply = http(console.url + "/topics")
    cookie = reply.headers["set-cookie"].split(";")[0]
    token = re.search(r'name="csrf" value="([^"]+)"', reply.body)
    assert token is not None
    return cookie, token.group(1)


def test_defaults_bind_loopback() -> None:
    assert ConsoleConfig().host == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_listening_beyond_loopback_needs_a_login(host: str) -> None:
    with pytest.raises(ConsoleConfigError, match="without a login"):
        ConsoleConfig(host=host).check()
    ConsoleConfig(host=host, token="t").check()
    ConsoleConfig(host=host, user=("admin", "pw")).check()


def test_a_post_without_the_csrf_token_changes_nothing(
    console: RunningConsole, kafka_broker: EmbeddedBroker, unique: str
) -> None:
    cookie, token = csrf_cookie_and_token(console)
    name = f"csrf-{unique}"
    # No token, a wrong token, a token without its cookie, a foreign Origin: all refused.
    attempts = [
        ({"name": name}, {"cookie": cookie}),
        ({"name": name, "csrf": "forged"}, {"cookie": cookie}),
        ({"name": name, "csrf": token}, {}),
        ({"name": name, "csrf": token}, {"cookie": cookie, "origin": "http://evil.example"}),
    ]
    for form, headers in attempts:
        reply = http(console.url + "/topics/new", form, headers)
        assert reply.status == 403, (form, headers)
        assert "CSRF" in reply.body or "cross-site" in reply.body
    assert name not in topics_of(kafka_broker)
    # The same form with its token and cookie (and our own Origin) works.
    origin = console.url
    reply = http(console.url + "/topics/new", {"name": name, "csrf": token},
                 {"cookie": cookie, "origin": origin})  # fmt: skip
    assert reply.status == 303
    assert name in topics_of(kafka_broker)


def test_read_only_refuses_posts(
    start_console: Callable[..., RunningConsole], kafka_broker: EmbeddedBroker, unique: str
) -> None:
    console = start_console(read_only=True)
    reply = http(console.url + "/topics")
    assert "create-topic" not in reply.body
    # A well-formed POST (cookie and matching token) is still refused.
    cookie = reply.headers["set-cookie"].split(";")[0]
    token = cookie.partition("=")[2]
    name = f"ro-{unique}"
    reply = http(console.url + "/topics/new", {"name": name, "csrf": token}, {"cookie": cookie})
    assert reply.status == 403
    assert "read-only" in reply.body
    assert name not in topics_of(kafka_broker)


def test_login_guards_pages_and_actions(
    start_console: Callable[..., RunningConsole], kafka_broker: EmbeddedBroker, unique: str
) -> None:
    console = start_console(user=("admin", "pw"))
    assert http(console.url + "/").status == 303  # to /login
    assert http(console.url + "/topics/new", {"name": f"x-{unique}"}).status == 401
    basic = "Basic " + base64.b64encode(b"admin:pw").decode()
    assert http(console.url + "/", headers={"authorization": basic}).status == 200
    wrong = "Basic " + base64.b64encode(b"admin:nope").decode()
    assert http(console.url + "/", headers={"authorization": wrong}).status == 303
    reply = http(console.url + "/login", {"user": "admin", "password": "pw", "next": "/groups"})
    assert reply.status == 303 and reply.headers["location"] == "/groups"
    session = reply.headers["set-cookie"].split(";")[0]
    assert http(console.url + "/groups", headers={"cookie": session}).status == 200
    # An open redirect through `next` goes home instead.
    reply = http(console.url + "/login", {"user": "admin", "password": "pw",
                                          "next": "//evil.example/"})  # fmt: skip
    assert reply.headers["location"] == "/"


def test_bearer_token_works_for_scripts(
    start_console: Callable[..., RunningConsole], kafka_broker: EmbeddedBroker, unique: str
) -> None:
    console = start_console(token="tok")
    bearer = {"authorization": "Bearer tok"}
    assert http(console.url + "/topics", headers=bearer).status == 200
    name = f"bearer-{unique}"
    reply = http(console.url + "/topics/new", {"name": name}, bearer)
    assert reply.status == 303
    assert name in topics_of(kafka_broker)


def test_pages_forbid_inline_script(console: RunningConsole) -> None:
    """Defence in depth behind escaping: the Content-Security-Policy runs only our own file."""
    reply = http(console.url + "/")
    assert "script-src 'self'" in reply.headers["content-security-policy"]
    assert "<script>" not in reply.body
