"""The README's client example runs as printed, against a real broker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from klamm.testing import EmbeddedBroker

README = Path(__file__).resolve().parents[2] / "README.md"


def _first_python_block(after_heading: str) -> str:
    text = README.read_text()
    section = text[text.index(after_heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_client_example_prints_the_charged_totals(tmp_path: Path) -> None:
    code = _first_python_block("## The client")
    assert 'brokers=["127.0.0.1:9092"]' in code
    with EmbeddedBroker(mode="subprocess") as broker:
        script = tmp_path / "example.py"
        script.write_text(code.replace("127.0.0.1:9092", broker.bootstrap))
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[42, 7]"
