"""`klamm demo`: the seed scenario end to end, written with klamm's client.

    klamm demo                       # starts an embedded broker for the run
    klamm demo -b 127.0.0.1:9092     # or uses a running cluster (any Kafka)

order-service produces orders keyed by customer to a 6-partition topic; payment-service, a group of
3 consumers (cooperative-sticky), charges each order exactly once (idempotent handler on SQLite);
analytics, another group, reads the same topic independently; one poison order is retried, then
lands in the dead-letter topic with its metadata headers. A summary table closes the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from rich.console import Console

from klamm import Events, Kafka, KafkaError, Message, PartitionAssigners, RetryPolicy
from klamm.cli._common import (
    DEFAULT_TIMEOUT,
    CliError,
    bootstrap_servers,
    command,
    console,
    positive_int,
    print_table,
    probe,
    quiet_logger,
    seconds,
    table,
)
from klamm.patterns import SQLiteStore, idempotent

PARTITIONS = 6
MEMBERS = 3
CUSTOMERS = 8
# Orders per send(): a large -n is produced in steps, each an await where Ctrl-C can land,
# rather than as one list built in a single uninterruptible loop.
SEND_BATCH = 10_000
# Fast group settings: a demo should rebalance in a second, not in Kafka's 30-second defaults.
GROUP_OPTIONS: dict[str, Any] = {
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 500,
    "max_wait_time_ms": 100,
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the order/payment/DLQ scenario",
        description="Run the seed scenario: producer, consumer groups, retries and a DLQ.",
    )
    parser.add_argument("-b", "--bootstrap", type=bootstrap_servers, metavar="HOST:PORT[,...]",
                        help="a running cluster (default: start one)")  # fmt: skip
    parser.add_argument("-n", "--orders", type=positive_int, default=60, metavar="N",
                        help="orders to produce (default 60)")  # fmt: skip
    parser.add_argument("--timeout", type=seconds, default=60.0, metavar="SECONDS",
                        help="seconds before giving up (default 60)")  # fmt: skip
    parser.set_defaults(func=run)


@command("demo")
def run(args: argparse.Namespace) -> int:
    out = console()
    with contextlib.ExitStack() as stack:
        bootstrap = args.bootstrap
        if bootstrap is None:
            from klamm.testing import EmbeddedBroker

            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap
            out.print(f"[dim]embedded broker on {bootstrap}[/dim]")
        else:
            # "connection refused" now, rather than a retrying client's timeout much later.
            probe(bootstrap, min(args.timeout, DEFAULT_TIMEOUT))
        try:
            return asyncio.run(_interruptible(scenario(out, bootstrap, args.orders, args.timeout)))
        except BaseException as exc:
            # Failed or interrupted: the consumers left behind warn of every reconnect while the
            # broker stops and until the process exits. The run is over; that is noise, and the
            # logger stays off (this is the end of the `klamm demo` process).
            logging.getLogger("klamm.client").disabled = True
            if isinstance(exc, KafkaError):
                raise CliError(str(exc)) from None
            raise
    return 1  # unreachable; keeps type checkers content


async def _interruptible(main: Coroutine[Any, Any, int]) -> int:
    """Run `main`; Ctrl-C cancels it, then raises KeyboardInterrupt once it has cleaned up.

    Python's own KeyboardInterrupt would stop the event loop at once, and a consumer thread
    still waiting for the loop (a rebalance callback) would then keep the process alive for a
    minute. A cancelled scenario disconnects its consumers on a running loop first.
    """
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def scenario(console: Console, bootstrap: str, orders: int, timeout_s: float) -> int:
    """Play the scenario against `bootstrap`; 0 when every order was handled as designed."""
    # The payments database lives only for the run.
    with tempfile.TemporaryDirectory(prefix="klamm-demo-") as workdir:
        db = os.path.join(workdir, "payments.db")
        consumers: list[Any] = []  # disconnected however the run ends, so no thread lingers
        try:
            return await _play(console, bootstrap, orders, timeout_s, db, consumers)
        finally:
            # Together: each one leaving its group takes a round of rebalancing.
            await asyncio.gather(*(c.disconnect() for c in consumers), return_exceptions=True)


async def _play(
    console: Console, bootstrap: str, orders: int, timeout_s: float, db: str, consumers: list[Any]
) -> int:
    run_id = uuid.uuid4().hex[:6]
    topic, dlq = f"orders-{run_id}", f"orders-{run_id}.dlq"
    # librdkafka logs every failed connection attempt; the outcome is reported as one error.
    kafka = Kafka(client_id="klamm-demo", brokers=[bootstrap], config={"logger": quiet_logger()})
    async with kafka.admin() as admin:
        await admin.create_topics(
            topics=[
                {"topic": topic, "num_partitions": PARTITIONS},
                {"topic": dlq, "num_partitions": 1},
            ]
        )

    poison_at = orders // 2
    charged: Counter[str] = Counter()
    per_member: Counter[str] = Counter()
    analytics: Counter[str] = Counter()
    dead: list[dict[str, str]] = []
    store = SQLiteStore(db)
    async with store.transaction() as tx:
        await tx.execute("CREATE TABLE payments (order_id TEXT PRIMARY KEY, amount INTEGER)")

    def charge(member: str) -> Any:
        async def process(payload: Any, tx: Any) -> None:
            order = json.loads(payload.message.value)
            amount = int(order["amount"])  # the poison order's amount is not a number
            await tx.execute("INSERT INTO payments VALUES (?, ?)", (order["id"], amount))
            charged[payload.message.key.decode()] += 1
            per_member[member] += 1

        return idempotent(store, process)

    async def count(payload: Any) -> None:
        analytics[payload.message.key.decode()] += 1

    payments = [
        kafka.consumer(
            group_id=f"payment-service-{run_id}",
            partition_assigners=[PartitionAssigners.COOPERATIVE_STICKY],
            **GROUP_OPTIONS,
        )
        for _ in range(MEMBERS)
    ]
    reader = kafka.consumer(group_id=f"analytics-{run_id}", **GROUP_OPTIONS)
    dlq_reader = kafka.consumer(group_id=f"dlq-inspector-{run_id}", **GROUP_OPTIONS)
    consumers += [*payments, reader, dlq_reader]

    async def record_dead(payload: Any) -> None:
        headers = {k: (v or b"").decode() for k, v in payload.message.headers.items()}
        dead.append(headers)

    def announce(member: int) -> Any:
        def listener(event: Any) -> None:
            assignment = event.payload["member_assignment"]
            console.print(f"payment-service member {member}: partitions {assignment}")

        return listener

    for i, consumer in enumerate(payments):
        consumer.on(Events.GROUP_JOIN, announce(i))
        await consumer.connect()
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(
            each_message=charge(f"member {i}"),
            retry=RetryPolicy(initial_retry_time_ms=50, retries=2),
            dead_letter_topic=dlq,
        )
    for consumer, handler, name in ((reader, count, topic), (dlq_reader, record_dead, dlq)):
        await consumer.connect()
        await consumer.subscribe(topics=[name], from_beginning=True)
        await consumer.run(each_message=handler)

    started = time.monotonic()
    async with kafka.producer(idempotent=True) as producer:
        for first in range(0, orders, SEND_BATCH):
            messages = []
            for n in range(first, min(first + SEND_BATCH, orders)):
                customer = f"customer-{n % CUSTOMERS}"
                amount: Any = "NaN" if n == poison_at else 10 + n
                body = json.dumps({"id": f"order-{n}", "amount": amount})
                messages.append(Message(key=customer, value=body, headers={"trace-id": f"t-{n}"}))
            await producer.send(topic=topic, messages=messages)
    console.print(f"order-service: produced {orders} orders to {topic} ({PARTITIONS} partitions)")

    ok = True
    deadline = time.monotonic() + timeout_s
    while sum(charged.values()) < orders - 1 or sum(analytics.values()) < orders or not dead:
        if time.monotonic() > deadline:
            console.print("[red]timed out waiting for the scenario to finish[/red]")
            ok = False
            break
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    for consumer in (*payments, reader, dlq_reader):
        await consumer.disconnect()
    async with store.transaction() as tx:
        rows = (await tx.execute("SELECT COUNT(*) FROM payments"))[0][0]
    await store.close()

    summary = table(
        "who", "what", "count", title=f"klamm demo ({elapsed:.2f} s)", numeric=["count"]
    )
    summary.add_row("order-service", f"orders produced to {topic}", str(orders))
    for member, n in sorted(per_member.items()):
        summary.add_row("payment-service", f"{member}: orders charged", str(n))
    summary.add_row("payment-service", "payment rows in SQLite (no duplicates)", str(rows))
    summary.add_row(
        "analytics", f"orders counted for {len(analytics)} customers", str(sum(analytics.values()))
    )
    for headers in dead:
        summary.add_row(
            "dead-letter topic",
            f"{headers.get('original-topic')}[{headers.get('original-partition')}]"
            f"@{headers.get('original-offset')} after {headers.get('retry-count')} retries: "
            f"{headers.get('error')}",
            "1",
        )
    print_table(console, summary)
    ok = ok and rows == orders - 1 and len(dead) == 1
    return 0 if ok else 1
