"""`python -m bench.soak`: real clients keep working while an adversary attacks the broker and
the broker is SIGKILLed and restarted.

    python -m bench.soak [--seconds 120] [--kill-every 25] [--p99-bound-ms 500]

For `--seconds`, against one subprocess broker on a fresh data directory:
- victim: confluent-kafka, enable.idempotence, acks=all, ~400 msg/s of numbered values to
  `soak-acked` (3 partitions); every delivery report's partition, offset and latency is kept;
- group: a confluent-kafka consumer group reading `soak-acked`;
- transactions: a transactional producer writes batches of five records to `soak-txn`,
  committing two and aborting every third;
- adversary: the attacks of `bench/soak_attacks.py`, one after another, again and again;
- killer: SIGKILL and restart of the broker every `--kill-every` seconds.

Then, with the adversary stopped and the broker up, it checks:
1. every acknowledged record is in the log, at its acknowledged offset, with its own value
   (nothing lost, nothing replaced), and no value is in the log twice (nothing duplicated);
2. the group has read every acknowledged record;
3. read_committed is never stuck: on `soak-txn` the last stable offset reaches the high
   watermark, and a read_committed consumer sees every committed transaction whole, nothing
   aborted, and the transactions whose outcome a crash hid either whole or not at all;
4. the victim's p99 produce latency, outside the restart windows (kill to ready + 3 s),
   stays within `--p99-bound-ms`;
5. the poison topic stays consumable to its end.

It prints one table and exits 1 when a check fails. `tests/soak/` runs a short version.
"""

from __future__ import annotations

import argparse
import collections
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.soak_attacks import ATTACKS, Topics, run_attack
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

TOPICS = Topics(acked="soak-acked", poison="soak-poison", fanout="soak-fanout")
TXN_TOPIC = "soak-txn"
ACKED_PARTITIONS = 3
TXN_PARTITIONS = 2
FANOUT_PARTITIONS = 500
TXN_SIZE = 5
# After a restart, librdkafka reconnects with backoff and the broker replays its logs: a
# message in flight then waits seconds, which says nothing about the broker under attack.
RESTART_GRACE_S = 3.0
# How long the checks wait for the cluster to settle (group catch-up, LSO) once load stops.
SETTLE_S = 60.0


@dataclass
class Restarts:
    """When the broker was down: (killed at, ready again at) in time.monotonic()."""

    windows: list[tuple[float, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, killed: float, ready: float) -> None:
        with self.lock:
            self.windows.append((killed, ready))

    def overlaps(self, start: float, end: float) -> bool:
        with self.lock:
            return any(start <= ready + RESTART_GRACE_S and end >= killed
                       for killed, ready in self.windows)  # fmt: skip


@dataclass
class Victim:
    """The acks=all idempotent producer's view: what it was told is stored, and how fast."""

    acked: dict[str, tuple[int, int]] = field(default_factory=dict)  # value -> (partition, offset)
    failed: int = 0
    fatal: str | None = None  # librdkafka gave up on the producer: an error the broker caused
    samples: list[tuple[float, float]] = field(default_factory=list)  # (sent at, acked at)


@dataclass
class Txns:
    committed: list[int] = field(default_factory=list)
    aborted: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)  # a crash hid the outcome


@dataclass
class Report:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    attacks: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, ok, detail))

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def _create_topics(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([
        NewTopic(TOPICS.acked, ACKED_PARTITIONS, 1),
        NewTopic(TOPICS.poison, 1, 1),
        NewTopic(TOPICS.fanout, FANOUT_PARTITIONS, 1),
        NewTopic(TXN_TOPIC, TXN_PARTITIONS, 1),
    ])  # fmt: skip
    for future in futures.values():
        future.result(30)


def _victim(bootstrap: str, stop: threading.Event, rate: int, victim: Victim) -> None:
    producer = Producer({
        "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
        "linger.ms": 1, "message.timeout.ms": 30000, "reconnect.backoff.max.ms": 200,
    })  # fmt: skip
    sent_at: dict[str, float] = {}

    def report(err: Any, msg: Any) -> None:
        value = msg.value().decode()
        if err is None:
            victim.acked[value] = (msg.partition(), msg.offset())
            victim.samples.append((sent_at.pop(value), time.monotonic()))
        else:
            victim.failed += 1
            sent_at.pop(value, None)

    n = 0
    interval = 1.0 / rate
    next_send = time.monotonic()
    try:
        while not stop.is_set():
            value = f"victim-{n}"
            sent_at[value] = time.monotonic()
            producer.produce(TOPICS.acked, value=value.encode(), key=str(n % 97).encode(),
                             on_delivery=report)  # fmt: skip
            n += 1
            next_send += interval
            producer.poll(max(0.0, next_send - time.monotonic()))
        remaining = producer.flush(60)
        if remaining:
            victim.failed += remaining
    except KafkaException as exc:  # e.g. OUT_OF_ORDER_SEQUENCE_NUMBER after a forged producer id
        victim.fatal = str(exc)


def _group(bootstrap: str, stop: threading.Event, seen: set[str]) -> None:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "soak-group", "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000, "reconnect.backoff.max.ms": 200,
    })  # fmt: skip
    consumer.subscribe([TOPICS.acked])
    try:
        while not stop.is_set():
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                seen.add(msg.value().decode())
    finally:
        consumer.close()


def _txn_producer(bootstrap: str) -> Producer:
    producer = Producer({
        "bootstrap.servers": bootstrap, "transactional.id": "soak-txn",
        "transaction.timeout.ms": 10000, "reconnect.backoff.max.ms": 200,
    })  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            producer.init_transactions(10)
            return producer
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _transactions(bootstrap: str, stop: threading.Event, txns: Txns) -> None:
    producer = _txn_producer(bootstrap)
    number = 0
    while not stop.is_set():
        abort = number % 3 == 2
        try:
            producer.begin_transaction()
            for i in range(TXN_SIZE):
                producer.produce(TXN_TOPIC, value=f"t{number}-{i}".encode(),
                                 partition=i % TXN_PARTITIONS)  # fmt: skip
            if abort:
                producer.abort_transaction(15)
                txns.aborted.append(number)
            else:
                producer.commit_transaction(15)
                txns.committed.append(number)
        except KafkaException:
            txns.unknown.append(number)
            try:
                producer.abort_transaction(15)
            except KafkaException:
                # Fatal or stuck: a new instance fences the old one and aborts what it left.
                producer = _txn_producer(bootstrap)
        number += 1
        time.sleep(0.05)
    # The last transaction either committed or aborted above; nothing is left open.


def _adversary(bootstrap: str, stop: threading.Event, report: Report) -> None:
    while not stop.is_set():
        for attack in ATTACKS:
            if stop.is_set():
                return
            outcome = run_attack(attack, bootstrap, TOPICS)
            report.attacks[(attack.__name__, outcome)] += 1
            if outcome.startswith("connection:"):
                time.sleep(0.25)  # the broker is restarting


def _killer(
    broker: EmbeddedBroker, stop: threading.Event, every: float, restarts: Restarts
) -> None:
    while not stop.wait(every):
        killed = time.monotonic()
        broker.kill()
        broker.start()
        restarts.add(killed, time.monotonic())


def _read_all(bootstrap: str, topic: str, partitions: int, committed: bool = False,
              timeout: float = SETTLE_S) -> list[tuple[int, int, bytes]]:  # fmt: skip
    """Every record of `topic` as (partition, offset, value), read to the high watermark (or to
    the last stable offset with `committed`)."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"soak-read-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed" if committed else "read_uncommitted",
    })  # fmt: skip
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
                for p in range(partitions)}  # fmt: skip
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        records: list[tuple[int, int, bytes]] = []
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + timeout
        while len(done) < partitions and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                    if tp.offset >= ends[tp.partition]:
                        done.add(tp.partition)
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(msg.error())
            records.append((msg.partition(), msg.offset(), msg.value()))
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        if len(done) < partitions:
            raise TimeoutError(f"{topic}: did not reach the end within {timeout:.0f} s")
        return records
    finally:
        consumer.close()


def _stable_offsets(bootstrap: str) -> tuple[list[int], list[int]]:
    """soak-txn's (last stable offsets, high watermarks), one per partition."""
    answers = []
    with Wire(bootstrap, timeout=10) as wire:
        for isolation in (1, 0):
            response = wire.request(
                2, 7, replica_id=-1, isolation_level=isolation,
                topics=[{"name": TXN_TOPIC, "partitions": [
                    {"partition_index": p, "current_leader_epoch": -1, "timestamp": -1}
                    for p in range(TXN_PARTITIONS)]}],
            )  # fmt: skip
            answers.append([p.offset for p in response.topics[0].partitions])
    return answers[0], answers[1]


def _check_acked(bootstrap: str, victim: Victim, report: Report) -> None:
    log = _read_all(bootstrap, TOPICS.acked, ACKED_PARTITIONS)
    at = {(p, o): v.decode() for p, o, v in log}
    lost = [v for v, where in victim.acked.items() if where not in at]
    replaced = [v for v, where in victim.acked.items() if where in at and at[where] != v]
    counts = collections.Counter(v for _, _, v in log)
    duplicated = [v for v, n in counts.items() if n > 1]
    report.check("acked records kept", not lost and not replaced,
                 f"{len(victim.acked)} acked; {len(lost)} lost, {len(replaced)} replaced"
                 + (f" (first: {(lost or replaced)[0]})" if lost or replaced else ""))  # fmt: skip
    report.check("no duplicates", not duplicated,
                 f"{len(log)} records in the log; {len(duplicated)} values twice")  # fmt: skip
    forged = sum(1 for _, _, v in log if v.startswith(b"forged-"))
    report.figures.append(("forged records stored", str(forged)))


def _check_victim_alive(victim: Victim, report: Report) -> None:
    report.check("victim producer never failed", victim.fatal is None, (victim.fatal or "")[:200])


def _check_group(seen: set[str], victim: Victim, report: Report) -> None:
    missing = [v for v in victim.acked if v not in seen]
    detail = f"{len(seen)} distinct values read; {len(missing)} acked ones never read"
    report.check("group read every acked record", not missing, detail)


def _check_transactions(bootstrap: str, txns: Txns, report: Report) -> None:
    deadline = time.monotonic() + SETTLE_S
    stable, high = _stable_offsets(bootstrap)
    while stable != high and time.monotonic() < deadline:
        time.sleep(0.5)
        stable, high = _stable_offsets(bootstrap)
    report.check("read_committed not stuck", stable == high,
                 f"last stable offsets {stable}, high watermarks {high}")  # fmt: skip
    if stable != high:
        return
    values = [v.decode() for _, _, v in _read_all(bootstrap, TXN_TOPIC, TXN_PARTITIONS, True)]
    per_txn = collections.Counter(int(v[1:].split("-")[0]) for v in values)
    missing = [t for t in txns.committed if per_txn.get(t) != TXN_SIZE]
    leaked = [t for t in txns.aborted if t in per_txn]
    torn = [t for t in txns.unknown if per_txn.get(t, TXN_SIZE) != TXN_SIZE]
    report.check("transactions atomic", not missing and not leaked and not torn,
                 f"{len(txns.committed)} committed, {len(txns.aborted)} aborted, "
                 f"{len(txns.unknown)} unknown; {len(missing)} incomplete, {len(leaked)} "
                 f"aborted seen, {len(torn)} torn")  # fmt: skip


def _check_latency(victim: Victim, restarts: Restarts, bound_ms: float, report: Report) -> None:
    latencies = sorted((acked - sent) * 1000 for sent, acked in victim.samples
                       if not restarts.overlaps(sent, acked))  # fmt: skip
    if not latencies:
        report.check("victim p99 latency", False, "no sample outside the restart windows")
        return
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    report.figures += [
        ("victim samples (outside restarts)", str(len(latencies))),
        ("victim p50 / p99 / max ms", f"{p50:.1f} / {p99:.1f} / {latencies[-1]:.1f}"),
        ("victim sends failed", str(victim.failed)),
    ]
    report.check(f"victim p99 <= {bound_ms:.0f} ms", p99 <= bound_ms, f"p99 {p99:.1f} ms")


def _check_poison(bootstrap: str, report: Report) -> None:
    try:
        records = _read_all(bootstrap, TOPICS.poison, 1, timeout=30)
        report.check("poison topic consumable", True, f"{len(records)} records read to the end")
    except (KafkaException, TimeoutError) as exc:
        report.check("poison topic consumable", False, str(exc)[:200])


def run(seconds: float, kill_every: float, p99_bound_ms: float, rate: int = 400,
        data_dir: Path | None = None) -> Report:  # fmt: skip
    report = Report()
    victim, txns, restarts, seen = Victim(), Txns(), Restarts(), set[str]()
    with EmbeddedBroker(data_dir, mode="subprocess") as broker:
        _create_topics(broker.bootstrap)
        stop_load, stop_chaos = threading.Event(), threading.Event()
        workers: list[tuple[Callable[..., None], tuple[Any, ...], threading.Event]] = [
            (_victim, (broker.bootstrap, stop_load, rate, victim), stop_load),
            (_transactions, (broker.bootstrap, stop_load, txns), stop_load),
            (_group, (broker.bootstrap, stop_chaos, seen), stop_chaos),
            (_adversary, (broker.bootstrap, stop_chaos, report), stop_chaos),
            (_killer, (broker, stop_chaos, kill_every, restarts), stop_chaos),
        ]
        threads = [threading.Thread(target=fn, args=args, daemon=True) for fn, args, _ in workers]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        # Adversary and killer stop first: the producers then drain against a live broker.
        stop_chaos.set()
        for thread, (fn, _, _) in zip(threads, workers, strict=True):
            if fn in (_adversary, _killer):
                thread.join(120)
        stop_load.set()
        for thread in threads:
            thread.join(120)
        started = time.monotonic()
        # The group keeps reading until it caught up, outside the chaos.
        catch_up = threading.Event()
        group = threading.Thread(target=_group, args=(broker.bootstrap, catch_up, seen))
        group.start()
        while any(v not in seen for v in victim.acked) and time.monotonic() - started < SETTLE_S:
            time.sleep(0.5)
        catch_up.set()
        group.join(60)
        _check_victim_alive(victim, report)
        _check_acked(broker.bootstrap, victim, report)
        _check_group(seen, victim, report)
        _check_transactions(broker.bootstrap, txns, report)
        _check_latency(victim, restarts, p99_bound_ms, report)
        _check_poison(broker.bootstrap, report)
        report.figures += [("seconds", f"{seconds:.0f}"), ("restarts", str(len(restarts.windows)))]
    return report


def print_report(report: Report, console: Console) -> None:
    table = Table(title="soak: checks")
    for column in ("check", "result", "detail"):
        table.add_column(column)
    for name, ok, detail in report.checks:
        table.add_row(name, "[green]ok[/]" if ok else "[red]FAILED[/]", detail)
    console.print(table)
    figures = Table(title="soak: figures")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    for name, value in report.figures:
        figures.add_row(name, value)
    console.print(figures)
    attacks = Table(title="soak: attack outcomes")
    for column in ("attack", "outcome", "times"):
        attacks.add_column(column)
    for (name, outcome), n in sorted(report.attacks.items()):
        attacks.add_row(name, outcome, str(n))
    console.print(attacks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--kill-every", type=float, default=25.0)
    parser.add_argument("--p99-bound-ms", type=float, default=500.0)
    parser.add_argument("--rate", type=int, default=400, help="victim messages per second")
    args = parser.parse_args(argv)
    report = run(args.seconds, args.kill_every, args.p99_bound_ms, args.rate)
    print_report(report, Console())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
