"""How klamm's costs grow: the published curves (docs/performance.md, "Scale").

    python -m bench scale [--quick] [--rounds 3] [--no-tansu] [--sweeps partitions sizes ...]

Sweeps, each against klamm (subprocess broker, fresh data dir, fsync before acks=all) and Tansu
(memory storage) in interleaved rounds, a fresh broker per point or round:
  partitions   produce/consume throughput, 100 B messages spread round-robin over 1 -> 10,000
               partitions of one topic (confluent-kafka, acks=all, linger.ms=5); the broker's
               RSS after creating them (memory vs partitions)
  sizes        throughput vs message size, 10 B -> 1 MB, one partition
  connections  idle connections 0 -> 10,000: broker RSS, and one active acks=all producer's
               throughput and produce-to-ack p50/p99 (bench/idle_connections.py)
  latency      end-to-end p50/p99 at 100 -> 100,000 msg/s (bench/latency.py: client defaults)
  recovery     klamm only (Tansu keeps nothing on disk): start-up after SIGKILL vs data size,
               on one partition and spread over 1,000 (bench/recovery.py)
Writes docs/scale.json (the numbers; sweeps not run keep their previous numbers),
docs/scale.md (tables) and docs/scale-*.png (plots; needs matplotlib: `pip install
klamm[bench]`). Figures are medians over the rounds, with their range. The whole run takes
minutes (about 20 here); --quick a fraction of that, for checking the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import idle_connections, latency, recovery, throughput
from bench.brokers import create_topic, find_tansu, klamm_broker, tansu_broker
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

DOCS = Path(__file__).resolve().parent.parent / "docs"
SWEEPS = ("partitions", "sizes", "connections", "latency", "recovery")

PARTITIONS = [1, 10, 100, 1000, 10_000]
SIZES = [10, 100, 1000, 10_000, 100_000, 1 << 20]
# A 1 MiB message is above the defaults (max.message.bytes 1048588 with the batch's overhead,
# librdkafka's message.max.bytes 1000000): both are raised for the size sweep.
BIG_TOPIC = {"max.message.bytes": str(2 << 20)}
BIG_PRODUCER: dict[str, object] = {"message.max.bytes": 2 << 20}
CONNECTIONS = [0, 100, 1000, 10_000]
# A consumer still short of its messages after this is stopped and its rate so far kept (Tansu
# read 414 msg/s from 10,000 partitions: 50,000 messages would take two minutes a round).
CONSUME_TIMEOUT = 30.0
RATES = [100, 1000, 10_000, 100_000]
RECOVERY_GB = [0.1, 0.3, 1.0]
RECOVERY_PARTITIONS = [1, 1000]

Point = dict[str, Any]
OS_FLUSH = "klamm, no fsync"  # the partitions sweep's third series, with --os-flush


def _brokers(
    with_tansu: bool, os_flush: bool = False, **klamm_settings: Any
) -> Iterator[tuple[str, Any]]:
    yield "klamm", klamm_broker(**klamm_settings)
    if os_flush:  # Kafka's default: acknowledged once in the page cache, no fsync
        yield OS_FLUSH, klamm_broker(OS_FLUSH, flush_policy="os", **klamm_settings)
    if with_tansu:
        binary = find_tansu()
        if binary is not None:
            yield "Tansu", tansu_broker(binary)


def _attempt(console: Console, label: str, fn: Callable[[], Point]) -> list[Point]:
    """One measurement; a broker that cannot do it (Tansu at 10,000 partitions, say) leaves
    a hole in its curve and a line saying why, not a failed run."""
    try:
        return [fn()]
    except Exception as exc:  # a peer failing is reported, not fatal
        console.print(f"  [yellow]{label}: {type(exc).__name__}: {str(exc)[:200]}[/yellow]")
        return []


def sweep_partitions(args: argparse.Namespace, console: Console, progress: Progress) -> list[Point]:
    count = 50_000 if args.quick else 200_000
    points: list[Point] = []
    for _round in range(args.rounds):
        for partitions in PARTITIONS:
            settings = {"max_broker_partitions": max(10_000, partitions + 100)}
            for name, manager in _brokers(not args.no_tansu, args.os_flush, **settings):

                def one(manager: Any = manager, partitions: int = partitions) -> Point:
                    with manager as broker:
                        topic = f"scale-{uuid.uuid4().hex[:8]}"
                        started = time.perf_counter()
                        create_topic(broker.bootstrap, topic, partitions)
                        create_s = time.perf_counter() - started
                        time.sleep(0.5)
                        rss = idle_connections.rss_kib(broker.pid) / 1024 if broker.pid else None
                        label = f"{broker.name} {partitions} partitions"
                        produce_s = throughput.produce(
                            broker.bootstrap, topic, count, 100, progress, label, partitions
                        )
                        consume_s = throughput.consume(
                            broker.bootstrap,
                            topic,
                            count,
                            progress,
                            label,
                            partitions,
                            timeout=CONSUME_TIMEOUT,
                        )
                    return {
                        "broker": broker.name,
                        "partitions": partitions,
                        "produce_rate": count / produce_s,
                        "consume_rate": count / consume_s,
                        "create_s": create_s,
                        "rss_mib": rss,
                    }

                points += _attempt(console, f"{name} {partitions} partitions", one)
    return points


def sweep_sizes(args: argparse.Namespace, console: Console, progress: Progress) -> list[Point]:
    total = 20e6 if args.quick else 100e6  # bytes per point; bounded in messages both ways
    points: list[Point] = []
    for _round in range(args.rounds):
        for name, manager in _brokers(not args.no_tansu):

            def run(manager: Any = manager) -> list[Point]:
                out = []
                with manager as broker:
                    for size in SIZES:
                        count = int(min(200_000, max(100, total // size)))
                        topic = f"size-{uuid.uuid4().hex[:8]}"
                        create_topic(broker.bootstrap, topic, 1, BIG_TOPIC)
                        label = f"{broker.name} {size} B"
                        produce_s = throughput.produce(
                            broker.bootstrap, topic, count, size, progress, label, 1, BIG_PRODUCER
                        )
                        consume_s = throughput.consume(
                            broker.bootstrap, topic, count, progress, label
                        )
                        out.append(
                            {
                                "broker": broker.name,
                                "size": size,
                                "produce_mbs": count * size / produce_s / 1e6,
                                "consume_mbs": count * size / consume_s / 1e6,
                                "produce_rate": count / produce_s,
                                "consume_rate": count / consume_s,
                            }
                        )
                return out

            try:
                points += run()
            except Exception as exc:  # see _attempt
                console.print(f"  [yellow]{name} sizes: {type(exc).__name__}: {exc}[/yellow]")
    return points


def sweep_connections(args: argparse.Namespace, console: Console, _p: Progress) -> list[Point]:
    counts = [0, 100, 1000] if args.quick else CONNECTIONS
    results = idle_connections.sweep(counts, args.rounds, not args.no_tansu, console)
    return [
        {
            "broker": r.broker,
            "connections": r.connections,
            "rss_mib": r.rss_after_kib / 1024,
            "kib_per_connection": r.kib_per_connection,
            "produce_rate": r.produce_rate,
            "p50_ms": r.p50_ms,
            "p99_ms": r.p99_ms,
        }
        for r in results
    ]


def sweep_latency(args: argparse.Namespace, console: Console, progress: Progress) -> list[Point]:
    seconds = 1.0 if args.quick else 3.0
    points: list[Point] = []
    for _round in range(args.rounds):
        for name, manager in _brokers(not args.no_tansu):
            try:
                with manager as broker:
                    for rate in RATES:
                        # At least ~500 samples, so a p99 is more than the five worst.
                        result = latency.measure(broker, rate, max(seconds, 500 / rate), progress)
                        points.append(
                            {
                                "broker": broker.name,
                                "rate": rate,
                                "received": result.received,
                                "sent": result.sent,
                                "p50_ms": result.pct(0.5),
                                "p99_ms": result.pct(0.99),
                            }
                        )
            except Exception as exc:  # see _attempt
                console.print(f"  [yellow]{name} latency: {type(exc).__name__}: {exc}[/yellow]")
    return points


def sweep_recovery(args: argparse.Namespace, console: Console, progress: Progress) -> list[Point]:
    sizes = [0.1, 0.3] if args.quick else RECOVERY_GB + [float(g) for g in args.recovery_gb]
    points: list[Point] = []
    for _round in range(args.rounds):
        for gb in sizes:
            for partitions in RECOVERY_PARTITIONS:
                task = progress.add_task(f"recovery: {gb:g} GB over {partitions}", total=None)
                try:
                    r = recovery.measure(gb, partitions, 0)
                    points.append(
                        {
                            "broker": "klamm",
                            "gb": gb,
                            "partitions": partitions,
                            "start_s": r.start_s,
                        }
                    )
                finally:
                    progress.remove_task(task)
    return points


RUNNERS: dict[str, Callable[[argparse.Namespace, Console, Progress], list[Point]]] = {
    "partitions": sweep_partitions,
    "sizes": sweep_sizes,
    "connections": sweep_connections,
    "latency": sweep_latency,
    "recovery": sweep_recovery,
}


# --- aggregation, tables, plots --------------------------------------------------------------


def summarise(points: list[Point], keys: tuple[str, ...], metric: str) -> list[Point]:
    """Per distinct `keys` value: the median of `metric` over the rounds and its range."""
    groups: dict[tuple[Any, ...], list[float]] = {}
    for p in points:
        if p.get(metric) is not None:
            groups.setdefault(tuple(p[k] for k in keys), []).append(float(p[metric]))
    return [
        {
            **dict(zip(keys, key, strict=True)),
            "median": statistics.median(values),
            "lo": min(values),
            "hi": max(values),
            "n": len(values),
        }
        for key, values in sorted(groups.items(), key=lambda kv: (kv[0][1:], kv[0][0]))
    ]


# (sweep, x key, [(metric, label, format)], title): one table and one figure each.
FIGURES: list[tuple[str, str, list[tuple[str, str, str]], str, str]] = [
    (
        "partitions",
        "partitions",
        [("produce_rate", "produce msg/s", ",.0f"), ("consume_rate", "consume msg/s", ",.0f")],
        "Throughput vs partitions (100 B, spread round-robin, acks=all)",
        "scale-partitions.png",
    ),
    (
        "sizes",
        "size",
        [("produce_mbs", "produce MB/s", ",.1f"), ("consume_mbs", "consume MB/s", ",.1f")],
        "Throughput vs message size (one partition, acks=all)",
        "scale-message-size.png",
    ),
    (
        "connections",
        "connections",
        [("produce_rate", "active producer msg/s", ",.0f"), ("p99_ms", "produce p99 ms", ".1f")],
        "One active producer vs idle connections",
        "scale-connections.png",
    ),
    (
        "latency",
        "rate",
        [("p50_ms", "e2e p50 ms", ".1f"), ("p99_ms", "e2e p99 ms", ".1f")],
        "End-to-end latency vs load (client defaults)",
        "scale-latency.png",
    ),
    (
        "recovery",
        "gb",
        [("start_s", "start-up after SIGKILL s", ".2f")],
        "Start-up after SIGKILL vs data (klamm)",
        "scale-recovery.png",
    ),
    (
        "partitions",
        "partitions",
        [("rss_mib", "broker RSS MiB", ",.0f")],
        "Memory vs partitions",
        "scale-memory-partitions.png",
    ),
    (
        "connections",
        "connections",
        [("rss_mib", "broker RSS MiB", ",.0f")],
        "Memory vs idle connections",
        "scale-memory-connections.png",
    ),
]


# One color per broker (and per layout in the recovery plot), the same in every figure.
COLORS: dict[object, str] = {
    "klamm": "tab:blue",
    "Tansu": "tab:orange",
    1: "tab:blue",
    1000: "tab:green",
}


def _series_keys(sweep: str) -> tuple[str, ...]:
    return ("broker", "partitions") if sweep == "recovery" else ("broker",)


def _label(series: tuple[Any, ...]) -> str:
    return series[0] if len(series) == 1 else f"{series[0]}, {series[1]} partition(s)"


def tables_markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Scale: the numbers",
        "",
        f"Generated by `python -m bench scale` ({data['machine']}; {data['note']}). "
        "Each cell: the median over the rounds, then the range. The plots and what they "
        'mean: performance.md, "Scale".',
        "",
    ]
    for sweep, xkey, metrics, title, _png in FIGURES:
        points = data["sweeps"].get(sweep, {}).get("points", [])
        if not points:
            continue
        lines += [f"## {title}", ""]
        keys = (*_series_keys(sweep), xkey)
        header = [xkey, "series"] + [label for _m, label, _f in metrics]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        cells: dict[tuple[Any, ...], list[str]] = {}
        for metric, _label_text, fmt in metrics:
            for row in summarise(points, keys, metric):
                key = tuple(row[k] for k in keys)
                text = f"{row['median']:{fmt}} ({row['lo']:{fmt}}-{row['hi']:{fmt}})"
                cells.setdefault(key, ["-"] * len(metrics))[
                    [m for m, _l, _f in metrics].index(metric)
                ] = text
        for key in sorted(cells, key=lambda k: (k[-1], k[:-1])):
            lines.append(f"| {key[-1]:,} | {_label(key[:-1])} | " + " | ".join(cells[key]) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(data: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for sweep, xkey, metrics, title, png in FIGURES:
        points = data["sweeps"].get(sweep, {}).get("points", [])
        if not points:
            continue
        keys = (*_series_keys(sweep), xkey)
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
        for ax, (metric, label, _fmt) in zip(axes[0], metrics, strict=True):
            rows = summarise(points, keys, metric)
            for series in sorted({tuple(r[k] for k in keys[:-1]) for r in rows}):
                mine = [r for r in rows if tuple(r[k] for k in keys[:-1]) == series]
                xs = [r[xkey] for r in mine]
                ys = [r["median"] for r in mine]
                err = [
                    [y - r["lo"] for y, r in zip(ys, mine, strict=True)],
                    [r["hi"] - y for y, r in zip(ys, mine, strict=True)],
                ]
                style = "--s" if series[0] == "Tansu" else "-o"
                color = COLORS.get(series[0] if len(series) == 1 else series[1])
                ax.errorbar(
                    xs, ys, yerr=err, fmt=style, capsize=3, label=_label(series), color=color
                )
            if sweep == "connections":  # 0 connections is a point too
                ax.set_xscale("symlog", linthresh=100)
            elif sweep != "recovery":
                ax.set_xscale("log")
            if metric in ("p50_ms", "p99_ms") or sweep == "sizes":
                ax.set_yscale("log")
            ax.set_xlabel(
                {"gb": "data GB", "size": "message bytes", "rate": "target msg/s"}.get(xkey, xkey)
            )
            ax.set_ylabel(label)
            ax.set_ylim(bottom=0 if ax.get_yscale() == "linear" else None)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        path = out_dir / png
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def console_tables(data: dict[str, Any], console: Console) -> None:
    for sweep, xkey, metrics, title, _png in FIGURES:
        points = data["sweeps"].get(sweep, {}).get("points", [])
        if not points:
            continue
        table = Table(title=title)
        keys = (*_series_keys(sweep), xkey)
        for column in (xkey, "series", *(label for _m, label, _f in metrics)):
            table.add_column(column, justify="left" if column == "series" else "right")
        rows = {
            m: {tuple(r[k] for k in keys): r for r in summarise(points, keys, m)}
            for m, _l, _f in metrics
        }
        for key in sorted({k for per in rows.values() for k in per}, key=lambda k: (k[-1], k[:-1])):
            cells = []
            for metric, _label_text, fmt in metrics:
                r = rows[metric].get(key)
                cells.append(
                    "-" if r is None else f"{r['median']:{fmt}} ({r['lo']:{fmt}}-{r['hi']:{fmt}})"
                )
            table.add_row(f"{key[-1]:,}", _label(key[:-1]), *cells)
        console.print(table)


def main(argv: list[str] | None = None, console: Console | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, smaller points")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-tansu", action="store_true", help="klamm only")
    parser.add_argument("--sweeps", nargs="+", choices=SWEEPS, default=list(SWEEPS))
    parser.add_argument(
        "--recovery-gb",
        type=float,
        nargs="*",
        default=[],
        help="more recovery sizes, e.g. 10 (check free disk)",
    )
    parser.add_argument(
        "--os-flush",
        action="store_true",
        help="partitions sweep: also klamm with klamm.flush.policy=os",
    )
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument("--plot-only", action="store_true", help="redraw from the JSON")
    args = parser.parse_args(argv)
    console = console or Console()
    json_path = args.out / "scale.json"
    data: dict[str, Any] = {"sweeps": {}}
    if json_path.exists():
        data = json.loads(json_path.read_text())
    if not args.plot_only:
        idle_connections.raise_fd_limit()  # 10,000 connections, and brokers inherit it
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        with progress:
            for sweep in args.sweeps:
                console.rule(sweep)
                started = time.monotonic()
                points = RUNNERS[sweep](args, console, progress)
                data["sweeps"][sweep] = {
                    "points": points,
                    "rounds": args.rounds,
                    "quick": args.quick,
                    "minutes": round((time.monotonic() - started) / 60, 1),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                }
                # Saved after every sweep: an interrupted run keeps what it measured.
                data["machine"] = (
                    f"{platform.machine()}, {os.cpu_count()} CPUs, "
                    f"Python {platform.python_version()}"
                )
                data["note"] = (
                    "a shared development machine: other work ran at the same "
                    "time, so compare brokers within a run, not absolute numbers"
                )
                json_path.write_text(json.dumps(data, indent=1) + "\n")
    console_tables(data, console)
    (args.out / "scale.md").write_text(tables_markdown(data))
    try:
        written = plot(data, args.out)
    except ImportError:
        console.print("[yellow]no matplotlib: `pip install klamm[bench]` for the plots[/yellow]")
        return
    console.print("wrote " + ", ".join(str(p) for p in [json_path, *written]))


if __name__ == "__main__":
    main()
