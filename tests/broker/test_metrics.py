"""Prometheus metrics: what a scraper sees after real traffic, in the exposition format."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from klamm.testing import EmbeddedBroker


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(metrics_port=0) as b:
        yield b


def scrape(broker: EmbeddedBroker) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    url = f"http://127.0.0.1:{broker.broker.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_partitions_requests_and_consumer_lag(broker: EmbeddedBroker) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(5):
        producer.produce("metered", value=f"v{i}".encode(), partition=0)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "metered-group"})
    consumer.commit(offsets=[TopicPartition("metered", 0, 2)], asynchronous=False)
    consumer.close()

    samples = scrape(broker)
    partition = (("partition", "0"), ("topic", "metered"))
    assert samples[("klamm_log_end_offset", partition)] == 5
    assert samples[("klamm_high_watermark", partition)] == 5
    assert samples[("klamm_log_size_bytes", partition)] > 0
    assert samples[("klamm_requests_total", (("api", "produce"),))] >= 1
    assert samples[("klamm_requests_total", (("api", "offset_commit"),))] >= 1
    lag = (("group", "metered-group"), ("partition", "0"), ("topic", "metered"))
    assert samples[("klamm_consumer_group_lag", lag)] == 3
    assert samples[("klamm_fsync_rounds_total", ())] >= 1


def test_other_paths_and_methods_are_refused(broker: EmbeddedBroker) -> None:
    base = f"http://127.0.0.1:{broker.broker.metrics_port}"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{base}/", timeout=5)
    assert info.value.code == 404
    info.value.close()
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(f"{base}/metrics", data=b"x"), timeout=5)
    assert info.value.code == 405
    info.value.close()
