"""Fixtures of the console's tests: a console served from a thread, and one headless Chromium
for the whole session (Debian's `chromium` driven through `chromium-driver`; nothing downloads
a browser). Without them the browser tests skip, except under CI=true, where they fail."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from klamm.console import ConsoleConfig
from klamm.testing import EmbeddedBroker
from tests.console.harness import RunningConsole
from tests.console.secured_helpers import Secured, secured_cluster

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Samples every half second: the lag chart and rates fill in within a test's lifetime.
TEST_SAMPLE_INTERVAL_S = 0.5


@pytest.fixture
def start_console(kafka_broker: EmbeddedBroker) -> Iterator[Callable[..., RunningConsole]]:
    """`start_console(read_only=True, token="t")`: a console on 127.0.0.1, free port."""
    started: list[RunningConsole] = []

    def start(**settings: Any) -> RunningConsole:
        settings.setdefault("sample_interval_s", TEST_SAMPLE_INTERVAL_S)
        config = ConsoleConfig(host="127.0.0.1", port=0, brokers=kafka_broker.bootstrap,
                               **settings)  # fmt: skip
        console = RunningConsole(config)
        started.append(console)
        return console

    yield start
    for console in started:
        console.stop()


@pytest.fixture
def console(start_console: Callable[..., RunningConsole]) -> RunningConsole:
    return start_console()


def _browser_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (starting one costs about a second)."""
    if not _browser_available():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromium-driver are required (see .ci/run)")
        pytest.skip("chromium / chromium-driver not installed (apt-get install chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--remote-debugging-address=127.0.0.1",
                "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's browser, cookies cleared, with `page.shot(name)` saving a screenshot
    under the test's output directory (the path is printed for reviewers)."""
    browser.delete_all_cookies()
    browser.set_window_size(1280, 1000)

    def shot(name: str) -> Path:
        path = tmp_path / f"{request.node.name}-{name}.png"
        browser.save_screenshot(str(path))
        print(f"screenshot: {path}")
        return path

    browser.shot = shot
    yield browser
    browser.get("about:blank")  # stop the page's polling before its console goes away


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """The module's SASL broker with an authorizer and ACLs (tests/console/secured_helpers.py)."""
    with secured_cluster(tmp_path_factory.mktemp("secured")) as cluster:
        yield cluster
