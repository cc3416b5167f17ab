"""Prometheus metrics: `GET /metrics` on a listener of its own (`--metrics HOST:PORT`).

The exposition is built on the event loop at scrape time from the broker's live state, so there
is nothing to keep in sync and the produce/fetch path pays only a request counter. Metric names
follow Prometheus conventions (`klamm_` prefix, `_total` counters, base units); consumer lag is
given per group and partition, as kafka-exporter users expect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from kio.schema.index import api_key_map
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from klamm.broker.node import Broker

log = logging.getLogger("klamm.broker.metrics")

# A scrape request is a request line and a few headers; anything longer is not a scraper.
_MAX_REQUEST_BYTES = 16 * 1024
_READ_TIMEOUT_S = 5.0


class BrokerCollector:
    """Reads the broker's state at scrape time (a prometheus_client custom collector)."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def collect(self) -> Iterator[Metric]:
        broker = self._broker
        requests = CounterMetricFamily(
            "klamm_requests", "Requests received, by Kafka API.", labels=["api"]
        )
        for key, count in sorted(broker.request_counts.items()):
            requests.add_metric([api_key_map.get(key, str(key))], count)
        yield requests
        yield GaugeMetricFamily(
            "klamm_connections", "Open client connections.", value=len(broker.connections)
        )
        yield CounterMetricFamily(
            "klamm_fsync_rounds", "Group-commit fsync rounds run.", value=broker.durability.rounds
        )
        yield from self._partitions()
        yield from self._groups()

    def _partitions(self) -> Iterator[Metric]:
        labels = ["topic", "partition"]
        start = GaugeMetricFamily("klamm_log_start_offset", "First offset kept.", labels=labels)
        end = GaugeMetricFamily("klamm_log_end_offset", "Next offset to be written.", labels=labels)
        high = GaugeMetricFamily(
            "klamm_high_watermark", "End of the durable log consumers may read.", labels=labels
        )
        size = GaugeMetricFamily("klamm_log_size_bytes", "Bytes in segment files.", labels=labels)
        for partition in self._broker.partitions():
            key = [partition.topic, str(partition.index)]
            start.add_metric(key, partition.log.log_start_offset)
            end.add_metric(key, partition.log.log_end_offset)
            high.add_metric(key, partition.high_watermark)
            size.add_metric(key, partition.log.size_bytes)
        yield from (start, end, high, size)

    def _groups(self) -> Iterator[Metric]:
        coordinator = self._broker.groups
        members = GaugeMetricFamily(
            "klamm_consumer_group_members", "Members of each group.", labels=["group", "state"]
        )
        for name, group in sorted(coordinator.groups.items()):
            members.add_metric([name, group.state.value], len(group.members))
        yield members
        lag = GaugeMetricFamily(
            "klamm_consumer_group_lag",
            "High watermark minus the committed offset.",
            labels=["group", "topic", "partition"],
        )
        for name in sorted(coordinator.offsets.groups()):
            for (topic, index), committed in sorted(coordinator.offsets.of_group(name).items()):
                partition = self._broker.partition(topic, index)
                if partition is not None:
                    behind = max(partition.high_watermark - committed.offset, 0)
                    lag.add_metric([name, topic, str(index)], behind)
        yield lag


class MetricsServer:
    """A minimal HTTP/1.1 listener that answers `GET /metrics` and closes the connection."""

    def __init__(self, broker: Broker) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(BrokerCollector(broker))
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port, limit=_MAX_REQUEST_BYTES)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(request_line) < 2 or request_line[0] not in ("GET", "HEAD"):
                status, body, kind = "405 Method Not Allowed", b"use GET /metrics\n", "text/plain"
            elif request_line[1].split("?", 1)[0] != "/metrics":
                status, body, kind = "404 Not Found", b"metrics are at /metrics\n", "text/plain"
            else:
                status, body, kind = "200 OK", generate_latest(self._registry), CONTENT_TYPE_LATEST
            payload = b"" if request_line and request_line[0] == "HEAD" else body
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # not a scraper, or a slow one: just close
        except ConnectionError:
            pass
        finally:
            writer.close()
