"""How long the console takes to open the newest page of a big topic (issue 15: a topic of 10M
messages opens on its newest page in under 300 ms).

    python -m bench.console_page [--messages 10000000] [--pages 10]

Fills one partition of a subprocess klamm broker with small JSON messages, serves the console
in this process and times full HTTP round trips of /topics/big/messages (newest page, 50
messages): the first (a fresh browse consumer) and the following ones.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import urllib.request

import confluent_kafka
from bench.brokers import create_topic, klamm_broker
from rich.console import Console


def fill(bootstrap: str, count: int) -> float:
    create_topic(bootstrap, "big")
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
         "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000, "acks": 1}
    )  # fmt: skip
    started = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce("big", value=b'{"n":%d,"v":"payload"}' % i)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 100_000 == 0:
            producer.poll(0)
    assert producer.flush(300) == 0
    return time.perf_counter() - started


async def time_pages(bootstrap: str, pages: int) -> list[float]:
    from klamm.console import ConsoleConfig, ConsoleServer

    server = ConsoleServer(ConsoleConfig(port=0, brokers=bootstrap))
    await server.start()
    url = f"{server.url}topics/big/messages"
    times = []
    try:
        for _ in range(pages):
            started = time.perf_counter()
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read())
            times.append((time.perf_counter() - started) * 1000)
            assert b"50 message(s) shown" in body
    finally:
        await server.stop()
    return times


def main(argv: list[str] | None = None, console: Console | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args(argv)
    console = console or Console()
    with klamm_broker() as broker:
        seconds = fill(broker.bootstrap, args.messages)
        console.print(f"filled {args.messages:,} messages in {seconds:.1f} s")
        times = asyncio.run(time_pages(broker.bootstrap, args.pages))
    console.print(
        f"newest page: first {times[0]:.0f} ms, then median {statistics.median(times[1:]):.0f} ms,"
        f" max {max(times[1:]):.0f} ms"
    )


if __name__ == "__main__":
    main()
