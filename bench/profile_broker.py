"""Where the broker's CPU goes on produce and fetch: cProfile of a subprocess broker under load.

    python -m bench.profile_broker [--client kcat|python] [--partitions 1 1000] [--sizes 100 1024]
                                   [--count N] [--top 25] [--no-profile]

For each (partitions, size) it starts a fresh klamm broker (fsync before acks=all, as in
production), creates the topic, then profiles the broker's event-loop thread while the client
produces `--count` messages, and again while it reads them back. Each phase prints the broker's
CPU per message (from /proc, every thread, profiler included unless --no-profile) and the
functions with the most own time (cProfile `tottime`). cProfile adds a fixed cost per Python
call, so small functions look dearer than they are: use --no-profile for the CPU figures, and
the profile for where the time goes. The profiler times functions by the thread's CPU clock
(time.thread_time), so time spent waiting (preempted, or blocked in a syscall) is not charged
to the function that waited. Worker threads (fsync) are not profiled; their CPU is in
the per-message figure.

The broker runs as `python -m bench.profile_broker --serve STATS -- <klamm broker args>`: that
wrapper turns the profiler on at SIGUSR1 and, at SIGUSR2, turns it off and writes STATS.N.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bench.brokers import _free_port, _wait_listening, create_topic
from bench.load import CLIENTS, Workload, cpu_seconds, thread_cpu_seconds

# Time for a signalled profiler switch to take effect: the handler runs at the broker's next
# Python bytecode, within milliseconds on a busy or idle loop (the loop wakes every second).
_SWITCH_S = 0.2


@dataclass
class KlammProcess:
    bootstrap: str
    pid: int
    stats: Path | None  # where the profiler writes (STATS.1, STATS.2, ...) when profiled
    dumps: int = 0

    def profile_on(self) -> None:
        if self.stats is not None:
            os.kill(self.pid, signal.SIGUSR1)
            time.sleep(_SWITCH_S)

    def profile_off(self) -> pstats.Stats | None:
        """Stop profiling; the stats of the phase since `profile_on`."""
        if self.stats is None:
            return None
        os.kill(self.pid, signal.SIGUSR2)
        self.dumps += 1
        out = Path(f"{self.stats}.{self.dumps}")
        deadline = time.monotonic() + 10
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(_SWITCH_S)  # dump_stats writes the file in one go, but not atomically
        return pstats.Stats(str(out))


@contextlib.contextmanager
def klamm_process(
    profile: bool = False, env: dict[str, str] | None = None, flush_policy: str = "fsync"
) -> Iterator[KlammProcess]:
    """A klamm broker in a child process on a fresh data dir (klamm.flush.policy `fsync` unless
    told otherwise), optionally wrapped by the profiler (`--serve`); `env` replaces the
    environment (another PYTHONPATH)."""
    with tempfile.TemporaryDirectory(prefix="klamm-bench-") as tmp:
        port = _free_port()
        data = Path(tmp) / "data"
        props = Path(tmp) / "broker.properties"
        props.write_text(f"klamm.flush.policy={flush_policy}\nauto.create.topics.enable=false\n")
        broker = ["broker", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
                  "--config", str(props), "--log-level", "WARNING"]  # fmt: skip
        stats = Path(tmp) / "profile" if profile else None
        if stats is not None:
            cmd = [sys.executable, "-m", "bench.profile_broker", "--serve", str(stats), "--",
                   *broker]  # fmt: skip
        else:
            cmd = [sys.executable, "-m", "klamm", *broker]
        with open(Path(tmp) / "broker.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                _wait_listening(port, proc)
                yield KlammProcess(f"127.0.0.1:{port}", proc.pid, stats)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def serve(stats: str, argv: Sequence[str]) -> int:
    """Run `klamm <argv>` with the profiler switched by SIGUSR1 (on) and SIGUSR2 (off, dump)."""
    from klamm.cli.main import main

    # The thread's CPU clock, not the wall clock: on a shared machine a function that was
    # preempted (or a syscall that waited) would otherwise be charged the time it did not run.
    profiler = cProfile.Profile(time.thread_time)
    dumps = 0

    def on(_signum: int, _frame: FrameType | None) -> None:
        profiler.enable()

    def off(_signum: int, _frame: FrameType | None) -> None:
        nonlocal dumps
        profiler.disable()
        dumps += 1
        profiler.dump_stats(f"{stats}.{dumps}")
        profiler.clear()

    signal.signal(signal.SIGUSR1, on)
    signal.signal(signal.SIGUSR2, off)
    return main(list(argv))


def top(stats: pstats.Stats, count: int, sort: str = "tottime") -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats(sort).print_stats(count)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(lines[start:])


def run(args: argparse.Namespace) -> None:
    produce, consume = CLIENTS[args.client]
    for partitions in args.partitions:
        for size in args.sizes:
            count = args.count or (1_000_000 if size <= 100 else 200_000)
            if args.client == "python":
                count //= 2
            load = Workload(partitions, size, count)
            with klamm_process(not args.no_profile, None, args.flush_policy) as broker:
                topic = f"profile-{uuid.uuid4().hex[:8]}"
                create_topic(broker.bootstrap, topic, partitions)
                for phase, work in (("produce", produce), ("consume", consume)):
                    broker.profile_on()
                    cpu, threads = cpu_seconds(broker.pid), thread_cpu_seconds(broker.pid)
                    elapsed = work(broker.bootstrap, topic, load)
                    cpu = cpu_seconds(broker.pid) - cpu
                    after = thread_cpu_seconds(broker.pid)
                    stats = broker.profile_off()
                    loop_cpu = after.get(broker.pid, 0.0) - threads.get(broker.pid, 0.0)
                    print(
                        f"\n=== {args.client} {phase} {load.name}: {count:,} msgs in "
                        f"{elapsed:.2f} s ({count / elapsed:,.0f} msg/s); broker CPU "
                        f"{cpu:.2f} s = {cpu / count * 1e6:.2f} µs/msg, of which the event-loop "
                        f"thread {loop_cpu / count * 1e6:.2f} and the others (fsync, inflating) "
                        f"{(cpu - loop_cpu) / count * 1e6:.2f}{' (profiled)' if stats else ''}",
                        flush=True,
                    )
                    if stats is not None:
                        print(top(stats, args.top, args.sort), flush=True)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        raise SystemExit(serve(argv[1], argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--client", choices=sorted(CLIENTS), default="kcat")
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 1000])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1024])
    parser.add_argument("--count", type=int, default=0, help="messages (default: by size)")
    parser.add_argument("--top", type=int, default=25, help="functions listed per phase")
    parser.add_argument("--flush-policy", default="fsync", choices=["fsync", "os"])
    parser.add_argument("--sort", default="tottime", help="pstats key: tottime, cumulative")
    parser.add_argument("--no-profile", action="store_true", help="CPU figures only")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
