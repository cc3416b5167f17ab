"""STYLE.md 15: ruff and mypy --strict are part of the suite, so a lint error fails `make test`
like any other bug."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed: it is in the project's test extra")
        return found
    return str(path)


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "src", "tests", "bench"],
        ["ruff", "format", "--check", "src", "tests", "bench"],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_tool_is_clean(command: list[str]) -> None:
    result = subprocess.run(
        [_tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_users_type_checkers_see_klamms_types(tmp_path: Path) -> None:
    """klamm ships py.typed (PEP 561): mypy checks a user's program against klamm's annotations
    (here: a misspelt Message field), instead of treating klamm as untyped."""
    program = tmp_path / "app.py"
    program.write_text(
        "from klamm import Kafka, Message\n"
        "kafka = Kafka(brokers=['127.0.0.1:9092'])\n"
        "ok = Message(key=b'k', value=b'v')\n"
        "bad = Message(valu=b'v')\n"
    )
    result = subprocess.run(
        [_tool("mypy"), "--strict", "--no-incremental", str(program)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "import-untyped" not in result.stdout, result.stdout
    assert result.returncode == 1 and '"valu"' in result.stdout, result.stdout
    assert "app.py:3" not in result.stdout, result.stdout
