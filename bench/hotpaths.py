"""Broker hot paths: produce and consume rates and broker CPU per message, klamm vs Tansu.

    python -m bench.hotpaths [--rounds 3] [--clients kcat python] [--partitions 1 1000]
                             [--sizes 100 1024] [--baseline-src DIR] [--no-tansu] [--json FILE]

Every workload (client x partitions x message size) runs once per round on every broker, in an
order that rotates each round, each time on a freshly started broker: klamm from this tree
(subprocess, fsync before acks=all), optionally klamm from another source tree (`--baseline-src`,
e.g. `git archive a31a1a2 src | tar -x -C /tmp/base` then `--baseline-src /tmp/base/src`), and
Tansu (memory storage). Loads (bench/load.py): kcat, or confluent-kafka from Python; acks=all,
linger.ms=5; 1M x 100 B and 200k x 1 KiB for kcat, half that for Python. A row gives the median
and the range over rounds of the rate and of the broker process's CPU per message (/proc, all
threads), and the median (range) of the per-round klamm/peer rate ratios. The machine is shared:
compare ratios and CPU per message, which drift less than rates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.brokers import create_topic, find_tansu, tansu_broker
from bench.load import CLIENTS, Workload, cpu_seconds
from bench.profile_broker import klamm_process
from rich.console import Console
from rich.table import Table


@dataclass
class Sample:
    round: int
    broker: str
    client: str
    workload: str
    count: int
    produce_s: float
    consume_s: float
    produce_cpu_s: float
    consume_cpu_s: float


@contextlib.contextmanager
def _broker(
    name: str, baseline: Path | None, tansu: Path | None, flush_policy: str
) -> Iterator[tuple[str, int]]:
    """(bootstrap, pid) of a fresh broker `name`."""
    if name == "Tansu":
        assert tansu is not None
        with tansu_broker(tansu) as broker:
            assert broker.pid is not None
            yield broker.bootstrap, broker.pid
        return
    env = None
    if name != "klamm":
        assert baseline is not None
        env = {**os.environ, "PYTHONPATH": str(baseline)}
    with klamm_process(env=env, flush_policy=flush_policy) as process:
        yield process.bootstrap, process.pid


def measure(
    name: str,
    client: str,
    load: Workload,
    rnd: int,
    baseline: Path | None,
    tansu: Path | None,
    flush_policy: str = "fsync",
) -> Sample:
    produce, consume = CLIENTS[client]
    with _broker(name, baseline, tansu, flush_policy) as (bootstrap, pid):
        topic = f"hot-{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic, load.partitions)
        cpu = cpu_seconds(pid)
        produce_s = produce(bootstrap, topic, load)
        produced = cpu_seconds(pid)
        consume_s = consume(bootstrap, topic, load)
        consumed = cpu_seconds(pid)
    return Sample(rnd, name, client, load.name, load.count, produce_s, consume_s,
                  produced - cpu, consumed - produced)  # fmt: skip


def _fmt_range(values: list[float], fmt: str) -> str:
    mid = statistics.median(values)
    return f"{mid:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def render(samples: list[Sample], brokers: list[str], console: Console) -> None:
    table = Table(
        title="Broker hot paths: msg/s and broker CPU µs/msg, median (range) over rounds",
        caption="ratio: per-round klamm/peer rate; CPU: the broker process, all threads",
    )
    for col in ("client", "workload", "broker", "produce msg/s", "produce µs/msg",
                "consume msg/s", "consume µs/msg"):  # fmt: skip
        table.add_column(
            col, justify="left" if col in ("client", "workload", "broker") else "right"
        )
    keys = sorted({(s.client, s.workload) for s in samples}, key=lambda k: (k[0], k[1]))
    for client, workload in keys:
        rows = [s for s in samples if (s.client, s.workload) == (client, workload)]
        for broker in brokers:
            mine = [s for s in rows if s.broker == broker]
            if not mine:
                continue
            table.add_row(
                client, workload, broker,
                _fmt_range([s.count / s.produce_s for s in mine], ",.0f"),
                _fmt_range([s.produce_cpu_s / s.count * 1e6 for s in mine], ".2f"),
                _fmt_range([s.count / s.consume_s for s in mine], ",.0f"),
                _fmt_range([s.consume_cpu_s / s.count * 1e6 for s in mine], ".2f"),
            )  # fmt: skip
        for peer in brokers[1:]:
            ratios = _ratios(rows, "klamm", peer)
            if ratios:
                table.add_row(
                    client, workload, f"[bold]klamm / {peer}[/bold]",
                    _fmt_range([p for p, _ in ratios], ".2f") + "x", "",
                    _fmt_range([c for _, c in ratios], ".2f") + "x", "",
                    end_section=peer == brokers[-1],
                )  # fmt: skip
    console.print(table)


def _ratios(rows: list[Sample], mine: str, peer: str) -> list[tuple[float, float]]:
    """Per round: (produce rate ratio, consume rate ratio) of `mine` to `peer`."""
    by_round = {(s.round, s.broker): s for s in rows}
    out = []
    for rnd in sorted({s.round for s in rows}):
        a, b = by_round.get((rnd, mine)), by_round.get((rnd, peer))
        if a and b:
            out.append((b.produce_s / a.produce_s, b.consume_s / a.consume_s))
    return out


def main(argv: list[str] | None = None, console: Console | None = None) -> list[Sample]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", nargs="+", choices=sorted(CLIENTS), default=["kcat", "python"])
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 1000])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1024])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies message counts")
    parser.add_argument("--baseline-src", type=Path, help="another klamm src/ to compare")
    parser.add_argument("--no-tansu", action="store_true", help="klamm only")
    parser.add_argument(
        "--flush-policy", default="fsync", choices=["fsync", "os"],
        help="klamm.flush.policy: fsync before acks=all (default), or page cache only (Kafka's)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every sample here")
    args = parser.parse_args(argv)
    console = console or Console(width=160)  # the table is wide: never cut it to 80 columns
    tansu = None if args.no_tansu else find_tansu()
    brokers = ["klamm", *(["klamm@baseline"] if args.baseline_src else []),
               *(["Tansu"] if tansu else [])]  # fmt: skip
    samples: list[Sample] = []
    for rnd in range(args.rounds):
        for client in args.clients:
            for partitions in args.partitions:
                for size in args.sizes:
                    count = 1_000_000 if size <= 100 else 200_000
                    count = int(count * args.scale) // (2 if client == "python" else 1)
                    load = Workload(partitions, size, count)
                    order = brokers[rnd % len(brokers) :] + brokers[: rnd % len(brokers)]
                    for name in order:
                        s = measure(name, client, load, rnd, args.baseline_src, tansu,
                                    args.flush_policy)  # fmt: skip
                        samples.append(s)
                        console.print(
                            f"round {rnd} {client} {load.name} {name}: produce "
                            f"{s.count / s.produce_s:,.0f} msg/s "
                            f"({s.produce_cpu_s / s.count * 1e6:.2f} µs/msg), consume "
                            f"{s.count / s.consume_s:,.0f} msg/s "
                            f"({s.consume_cpu_s / s.count * 1e6:.2f} µs/msg)"
                        )
                        if args.json:
                            args.json.write_text(json.dumps([asdict(x) for x in samples]))
    render(samples, brokers, console)
    return samples


if __name__ == "__main__":
    main()
