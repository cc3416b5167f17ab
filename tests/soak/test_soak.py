"""A short run of `bench/soak.py`: real clients keep their guarantees while the adversary of
`bench/soak_attacks.py` attacks the broker and the broker is SIGKILLed and restarted.

`python -m bench.soak` runs the same for two minutes with a 500 ms p99 bound. Here the bound is
looser (2 s): this runs beside the rest of the suite on a 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.soak import print_report, run
from rich.console import Console


@pytest.mark.timeout(600)
def test_soak_under_attack_and_sigkill(tmp_path: Path) -> None:
    report = run(seconds=30, kill_every=12, p99_bound_ms=2000, data_dir=tmp_path / "data")
    failed = [(name, detail) for name, ok, detail in report.checks if not ok]
    if failed:
        print_report(report, Console(width=160))
    assert not failed
