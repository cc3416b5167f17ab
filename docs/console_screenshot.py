"""Make the console screenshots the README shows: `python docs/console_screenshot.py`.

Starts an embedded klamm broker, fills it with a small shop (topics, JSON orders with headers, a
consumer group behind by a few hundred messages, traffic for the rate charts), serves the console
beside it and photographs its pages in headless Chromium (Debian's `chromium` and
`chromium-driver`; `pip install -e '.[test]'` for Selenium). Writes docs/console-*.png.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time
from pathlib import Path

import confluent_kafka
from confluent_kafka import admin as rd_admin
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from klamm.console import ConsoleConfig, ConsoleServer  # noqa: E402
from klamm.testing import EmbeddedBroker  # noqa: E402

OUT = ROOT / "docs"
WIDTH, HEIGHT = 1280, 860
# Seconds of traffic before the photographs: enough samples (every 0.5 s) for a chart.
TRAFFIC_S = 12


def fill(bootstrap: str, stop: threading.Event) -> None:
    admin = rd_admin.AdminClient({"bootstrap.servers": bootstrap})
    topics = {"orders": 6, "payments": 3, "shipments": 3, "audit-log": 1}
    for future in admin.create_topics(
        [rd_admin.NewTopic(t, num_partitions=n, replication_factor=1) for t, n in topics.items()]
    ).values():
        future.result(10)
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    rng = random.Random(7)
    skus = ["KB-104", "MS-220", "MON-27", "USB-C3", "HUB-7"]

    def order(i: int) -> bytes:
        lines = [
            {"sku": rng.choice(skus), "qty": rng.randint(1, 3)} for _ in range(rng.randint(1, 3))
        ]
        return json.dumps(
            {
                "order_id": f"o-{10_000 + i}",
                "customer": f"c-{rng.randint(1, 400)}",
                "lines": lines,
                "total_eur": round(rng.uniform(9, 420), 2),
                "status": "placed",
            }
        ).encode()

    for i in range(1500):
        producer.produce(
            "orders",
            key=f"c-{i % 400}".encode(),
            value=order(i),
            headers={"source": "web", "trace-id": f"{rng.getrandbits(64):016x}"},
        )
        producer.produce(
            "payments",
            key=f"o-{10_000 + i}".encode(),
            value=json.dumps({"order_id": f"o-{10_000 + i}", "ok": True}).encode(),
        )
    producer.flush(10)
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "billing",
            "auto.offset.reset": "earliest",
            "client.id": "billing-1",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 500,
        }
    )
    consumer.subscribe(["orders"])
    i = 1500
    while not stop.is_set():
        # Production outpaces the billing consumer a little: lag grows, rates move.
        for _ in range(rng.randint(30, 60)):
            producer.produce(
                "orders", key=f"c-{i % 400}".encode(), value=order(i), headers={"source": "web"}
            )
            i += 1
        producer.poll(0)
        consumer.consume(num_messages=rng.randint(20, 50), timeout=0.2)
        time.sleep(0.1)
    producer.flush(10)
    consumer.close()


def main() -> None:
    with EmbeddedBroker() as broker:
        stop = threading.Event()
        traffic = threading.Thread(target=fill, args=(broker.bootstrap, stop))
        traffic.start()
        loop = asyncio.new_event_loop()
        runner = threading.Thread(target=loop.run_forever, daemon=True)
        runner.start()
        time.sleep(1.5)  # topics exist before the console takes its first sample
        server = ConsoleServer(
            ConsoleConfig(port=0, brokers=broker.bootstrap, sample_interval_s=0.5)
        )
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
        url = server.url.rstrip("/")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={WIDTH},{HEIGHT}",
            "--force-device-scale-factor=1",
        ):
            options.add_argument(arg)
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        try:
            time.sleep(TRAFFIC_S)
            for name, path in [
                ("overview", "/"),
                ("messages", "/topics/orders/messages?limit=6"),
                ("group", "/groups/billing"),
            ]:
                driver.get(url + path)
                time.sleep(0.5)
                target = OUT / f"console-{name}.png"
                driver.save_screenshot(str(target))
                print(f"wrote {target.relative_to(ROOT)}")
        finally:
            driver.quit()
            stop.set()
            traffic.join()
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    main()
