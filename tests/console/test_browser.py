"""The console in a real browser (headless Chromium) against the embedded broker: what a user
clicks, sees and cannot do. Screenshots of every page land in each test's tmp directory."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import confluent_kafka
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from klamm.testing import EmbeddedBroker
from tests.console.harness import RunningConsole
from tests.console.secured_helpers import Secured, console_as

# Seconds a page may take to show what a test waits for: far above the console's 0.5 s sampling
# and 2 s refresh, so only a console that never shows it fails.
WAIT_S = 20
# Times to find an element again that a refresh replaced while its text was read: refreshes are
# 2 s apart, so a second find almost always succeeds.
STALE_RETRIES = 3


def wait_for(driver: Any, condition: Callable[[Any], Any]) -> Any:
    # The console refreshes parts of a page in place every 2 s: an element found just before
    # a refresh goes stale under the condition, which then looks again.
    return WebDriverWait(
        driver, WAIT_S, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition)


def text_of(driver: Any, css: str) -> str:
    """The element's text, found again if a refresh replaced it between finding and reading."""
    for _ in range(STALE_RETRIES):
        try:
            return str(driver.find_element(By.CSS_SELECTOR, css).text)
        except StaleElementReferenceException:
            continue
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def create_topic(broker: EmbeddedBroker, name: str, partitions: int = 1) -> None:
    admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics(
        [confluent_kafka.admin.NewTopic(name, num_partitions=partitions, replication_factor=1)]
    ).values():
        future.result(10)


def produce(broker: EmbeddedBroker, topic: str, count: int, partition: int = 0) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(count):
        producer.produce(topic, value=f"message {i}".encode(), key=f"k{i}".encode(),
                         partition=partition)  # fmt: skip
    assert producer.flush(10) == 0


def test_overview_shows_the_cluster(
    page: Any, console: RunningConsole, kafka_broker: EmbeddedBroker, unique: str
) -> None:
    create_topic(kafka_broker, f"overview-{unique}", partitions=3)
    page.get(console.url + "/")
    assert page.title.startswith("Overview")
    assert text_of(page, "#cluster-id")  # DescribeCluster's cluster id
    assert int(text_of(page, "#topic-count")) >= 1
    assert page.find_element(By.CSS_SELECTOR, "svg.chart[role=img]").get_attribute("aria-label")
    page.shot("overview")
    page.set_window_size(390, 844)  # a phone: no page wider than the screen
    produce(kafka_broker, f"overview-{unique}", 3)
    for name, path in [("topics", "/topics"), ("topic", f"/topics/overview-{unique}"),
                       ("messages", f"/topics/overview-{unique}/messages"),
                       ("groups", "/groups"), ("overview", "/")]:  # fmt: skip
        page.get(console.url + path)
        width = page.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400, path
        page.shot(f"{name}-phone")


def test_create_topic_produce_and_see_the_message(
    page: Any, console: RunningConsole, unique: str
) -> None:
    topic = f"browser-{unique}"
    page.get(console.url + "/topics")
    page.find_element(By.ID, "new-topic-name").send_keys(topic)
    partitions = page.find_element(By.ID, "new-topic-partitions")
    partitions.clear()
    partitions.send_keys("2")
    page.shot("create-topic")
    page.find_element(By.ID, "create-topic-submit").click()
    wait_for(page, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash.ok"), "created"))
    assert text_of(page, "#partition-count") == "2"
    page.shot("topic")

    page.get(f"{console.url}/topics/{topic}/messages")
    page.find_element(By.ID, "produce-key").send_keys("order-1")
    page.find_element(By.ID, "produce-partition").send_keys("1")
    value = {
        "id": 7,
        "items": [{"sku": "A-1", "qty": 2}],
        "note": "<script>window.pwned=1</script>",
    }
    page.find_element(By.ID, "produce-value").send_keys(json.dumps(value))
    page.find_element(By.ID, "produce-headers").send_keys("trace-id=abc123")
    page.find_element(By.ID, "produce-submit").click()
    wait_for(page, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash.ok"), "partition 1"))
    message = wait_for(page, ec.presence_of_element_located((By.CSS_SELECTOR, ".msg")))
    assert message.get_attribute("data-partition") == "1"
    assert "order-1" in message.find_element(By.CSS_SELECTOR, ".key").text
    assert message.find_element(By.CSS_SELECTOR, ".hk").text == "trace-id"
    assert message.find_element(By.CSS_SELECTOR, ".hv").text == "abc123"
    # The JSON value is shown pretty: folded objects and arrays, keys and strings apart.
    json_view = message.find_element(By.CSS_SELECTOR, ".view-json")
    assert json_view.is_displayed()
    assert len(json_view.find_elements(By.CSS_SELECTOR, "details.j")) == 3
    assert '"sku"' in json_view.text and '"A-1"' in json_view.text
    # The <script> in the value is text on the page, and never ran.
    assert "<script>window.pwned=1</script>" in json_view.text
    assert page.execute_script("return window.pwned") is None
    page.shot("messages")
    # Switch views: text shows the raw document, hex its bytes.
    message.find_element(By.CSS_SELECTOR, "button[data-view=text]").click()
    assert message.find_element(By.CSS_SELECTOR, ".view-text").is_displayed()
    assert not json_view.is_displayed()
    message.find_element(By.CSS_SELECTOR, "button[data-view=hex]").click()
    assert message.find_element(By.CSS_SELECTOR, ".view-hex").text.startswith("7b 22")
    # Collapse the outer object.
    message.find_element(By.CSS_SELECTOR, "button[data-view=json]").click()
    json_view.find_element(By.CSS_SELECTOR, "details.j > summary").click()
    assert json_view.find_element(By.CSS_SELECTOR, "details.j").get_attribute("open") is None

    # A filter by JSON path finds it; one that does not match shows nothing.
    page.get(f"{console.url}/topics/{topic}/messages?value=$.items[0].sku=A-1")
    assert len(page.find_elements(By.CSS_SELECTOR, ".msg")) == 1
    page.get(f"{console.url}/topics/{topic}/messages?value=$.items[0].sku=B-2")
    assert page.find_elements(By.CSS_SELECTOR, ".msg") == []
    assert "scanned" in text_of(page, "#scan-progress")


def test_group_lag_shrinks_then_reset_with_dry_run(
    page: Any, console: RunningConsole, kafka_broker: EmbeddedBroker, unique: str
) -> None:
    topic, group = f"lag-{unique}", f"group-{unique}"
    create_topic(kafka_broker, topic)
    produce(kafka_broker, topic, 100)
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": kafka_broker.bootstrap, "group.id": group,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "client.id": "lag-watcher",
    })  # fmt: skip
    try:
        consumer.subscribe([topic])
        taken = 0
        while taken < 10:
            taken += len(consumer.consume(num_messages=10 - taken, timeout=1))
        consumer.commit(offsets=[confluent_kafka.TopicPartition(topic, 0, 10)], asynchronous=False)
        page.get(f"{console.url}/groups/{group}")
        wait_for(page, lambda d: text_of(d, "#group-lag") == "90")
        assert "lag-watcher" in text_of(page, "#main")  # the member and its client id
        # The running consumer commits more; the page (refreshing itself) shows the lag shrink.
        consumer.commit(offsets=[confluent_kafka.TopicPartition(topic, 0, 60)], asynchronous=False)
        wait_for(page, lambda d: text_of(d, "#group-lag") == "40")
        # While the group is active a reset can be previewed, not applied.
        page.get(f"{console.url}/groups/{group}?topic={topic}&strategy=earliest")
        assert page.find_element(By.ID, "reset-refused").is_displayed()
        assert not page.find_element(By.ID, "reset-apply").is_enabled()
        page.shot("group-active")
    finally:
        consumer.close()

    page.get(f"{console.url}/groups/{group}")
    wait_for(page, lambda d: text_of(d, "#group-state").upper() == "EMPTY")
    wait_for(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.chart polyline")) == 1)
    # Dry run: the plan shows 60 -> 0, and nothing changes.
    page.find_element(By.ID, "reset-strategy").send_keys("earliest")
    page.find_element(By.ID, "reset-preview").click()
    rows = wait_for(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#reset-plan tbody tr"))
    assert [c.text for c in rows[0].find_elements(By.TAG_NAME, "td")] == [topic, "0", "60", "0"]
    assert "Dry run" in text_of(page, "#reset-plan caption")
    page.shot("reset-dry-run")
    assert text_of(page, "#group-lag") == "40"
    page.find_element(By.ID, "reset-apply").click()
    wait_for(page, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash.ok"), "reset 1"))
    wait_for(page, lambda d: text_of(d, "#group-lag") == "100")
    page.shot("group-after-reset")


def test_read_only_hides_every_action(
    page: Any, start_console: Callable[..., RunningConsole], kafka_broker: EmbeddedBroker,
    unique: str,
) -> None:  # fmt: skip
    topic = f"ro-{unique}"
    create_topic(kafka_broker, topic)
    console = start_console(read_only=True)
    for path in ("/topics", f"/topics/{topic}", f"/topics/{topic}/messages", "/groups"):
        page.get(console.url + path)
        assert page.find_elements(By.CSS_SELECTOR, "form[method=post]") == [], path
    assert text_of(page, ".badge") == "read-only"
    page.shot("read-only")


def test_login_required_when_configured(
    page: Any, start_console: Callable[..., RunningConsole]
) -> None:
    console = start_console(token="s3cret-token")
    page.get(console.url + "/topics")
    assert page.current_url.startswith(console.url + "/login")
    page.find_element(By.ID, "login-password").send_keys("wrong")
    page.find_element(By.ID, "login-submit").click()
    wait_for(page, ec.presence_of_element_located((By.CSS_SELECTOR, ".flash.bad")))
    page.shot("login-failed")
    page.find_element(By.ID, "login-password").send_keys("s3cret-token")
    page.find_element(By.ID, "login-submit").click()
    wait_for(page, lambda d: d.current_url.endswith("/topics"))
    assert page.find_element(By.ID, "topics-table")


def test_live_tail_shows_new_messages(
    page: Any, console: RunningConsole, kafka_broker: EmbeddedBroker, unique: str
) -> None:
    topic = f"tail-{unique}"
    create_topic(kafka_broker, topic)
    produce(kafka_broker, topic, 3)
    page.get(f"{console.url}/topics/{topic}/messages?live=1")
    assert len(page.find_elements(By.CSS_SELECTOR, ".msg")) == 3
    produce(kafka_broker, topic, 2)
    started = time.monotonic()
    wait_for(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg")) == 5)
    assert time.monotonic() - started < WAIT_S


def test_transactions_and_producers(
    page: Any, console: RunningConsole, kafka_broker: EmbeddedBroker, unique: str
) -> None:
    topic, txn_id = f"txn-{unique}", f"payments-{unique}"
    create_topic(kafka_broker, topic)
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": kafka_broker.bootstrap, "transactional.id": txn_id}
    )
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce(topic, value=b"charged")
    assert producer.flush(10) == 0
    try:
        page.get(console.url + "/transactions")
        rows = page.find_elements(By.CSS_SELECTOR, "#transactions-table tbody tr")
        row = next(r for r in rows if txn_id in r.text)
        assert row.find_element(By.CSS_SELECTOR, ".state").text == "Ongoing"
        assert f"{topic}-0" in row.text
        page.shot("transactions")
        page.get(f"{console.url}/topics/{topic}/producers")
        cells = page.find_elements(By.CSS_SELECTOR, "#producers-table .txn-start")
        assert [c.text for c in cells] == ["0"]  # the open transaction began at offset 0
        page.shot("producers")
    finally:
        producer.commit_transaction(10)
    page.get(f"{console.url}/topics/{topic}/producers")
    cells = page.find_elements(By.CSS_SELECTOR, "#producers-table .txn-start")
    assert [c.text for c in cells] == ["-"]
    page.get(console.url + "/transactions")
    rows = page.find_elements(By.CSS_SELECTOR, "#transactions-table tbody tr")
    row = next(r for r in rows if txn_id in r.text)
    assert row.find_element(By.CSS_SELECTOR, ".state").text == "CompleteCommit"


UNLABELLED_CONTROLS = """
return [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(el => !(el.closest('label') || el.getAttribute('aria-label') || el.labels?.length
                  || (el.tagName === 'BUTTON' && el.textContent.trim())))
  .map(el => el.outerHTML.slice(0, 80));
"""


def test_keyboard_and_screen_reader_basics(
    page: Any, console: RunningConsole, kafka_broker: EmbeddedBroker, unique: str
) -> None:
    topic = f"a11y-{unique}"
    create_topic(kafka_broker, topic)
    produce(kafka_broker, topic, 2)
    page.get(console.url + "/")
    # The first Tab reaches "Skip to content", which moves focus to the page's content.
    page.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    skip = page.switch_to.active_element
    assert skip.text == "Skip to content"
    skip.send_keys(Keys.ENTER)
    assert page.switch_to.active_element.get_attribute("id") == "main"
    for path in ("/", "/topics", f"/topics/{topic}", f"/topics/{topic}/messages", "/groups",
                 "/transactions", "/acls"):  # fmt: skip
        page.get(console.url + path)
        assert page.execute_script(UNLABELLED_CONTROLS) == [], path
        assert page.find_element(By.CSS_SELECTOR, "nav[aria-label=Main]")
        assert page.find_elements(By.CSS_SELECTOR, "[aria-current=page]"), path


def test_acls_and_authorization_on_a_shared_cluster(page: Any, secured: Secured) -> None:
    """A SASL broker with an authorizer: the super user's console lists the ACLs in a table;
    a user without ACLs gets pages saying which permission is missing."""
    admin = console_as(secured.broker, "admin")
    try:
        page.get(admin.url + "/acls")
        rows = page.find_elements(By.CSS_SELECTOR, "#acls-table tbody tr")
        cells = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in rows]
        assert cells == [
            ["GROUP", "payments", "PREFIXED", "User:carol", "*", "READ", "ALLOW"],
            ["TOPIC", "orders", "LITERAL", "User:carol", "*", "DESCRIBE", "ALLOW"],
            ["TOPIC", "secret", "LITERAL", "User:carol", "10.0.0.9", "ALL", "DENY"],
        ]
        headers = page.find_elements(By.CSS_SELECTOR, "#acls-table thead th")
        assert [h.text.lower() for h in headers] == [
            "resource", "name", "pattern", "principal", "host", "operation", "permission"
        ]  # fmt: skip
        assert text_of(page, "#principal") == "User:admin"
        page.shot("acls-super-user")
        page.get(admin.url + "/transactions")
        assert "payments-1" in text_of(page, "#transactions-table")
    finally:
        admin.stop()
    bob = console_as(secured.broker, "bob")
    try:
        page.get(bob.url + "/acls")
        assert page.title.startswith("Not authorized")
        assert "User:bob lacks the Describe permission on the cluster" in text_of(page, "#error")
        page.shot("acls-no-permission")
        page.get(bob.url + "/topics/orders")
        assert "lacks the Describe permission on topic 'orders'" in text_of(page, "#error")
        page.get(bob.url + "/topics")
        assert "No topics." in text_of(page, "main")
    finally:
        page.get("about:blank")
        bob.stop()
