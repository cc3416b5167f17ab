"""Storage ownership runs one way (issue 14): each module changes only its own objects' state,
the log does not depend on the cleaner, and the broker reaches storage only through the
`klamm.storage` package."""

from __future__ import annotations

import ast
from pathlib import Path

import klamm.storage
from klamm.storage.config import LogConfig
from klamm.storage.log import PartitionLog
from klamm.testing import FakeClock
from tests.storage.storage_helpers import make_batch

STORAGE = Path(klamm.storage.__file__).parent
BROKER = STORAGE.parent / "broker"

# (module, expression) pairs allowed to touch a private member of an object that is not
# `self`/`cls`, each of the module's own classes:
ALLOWED = {
    # SegmentFiles (the cache) guards every SegmentFile's descriptor, pins and flags under its
    # one lock; the two classes are one unit (handles.py's docstring).
    ("handles.py", "file"),
    ("handles.py", "self._cache"),
    # LogSegment's classmethods set up the segment they construct.
    ("segment.py", "seg"),
}


def private_accesses(path: Path) -> list[tuple[int, str, str]]:
    """(line, expression, member) of every `expr._member` where expr is not self or cls."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__"):
            continue
        owner = ast.unparse(node.value)
        if owner in ("self", "cls"):
            continue
        found.append((node.lineno, owner, name))
    return sorted(found)


def test_no_storage_module_touches_another_objects_private_members() -> None:
    offenders = [
        f"{path.name}:{line}: {owner}.{name}"
        for path in sorted(STORAGE.glob("*.py"))
        for line, owner, name in private_accesses(path)
        if (path.name, owner) not in ALLOWED
    ]
    assert not offenders, "reach into another object's private state:\n" + "\n".join(offenders)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in `path`, at any depth (late imports included)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_the_log_does_not_depend_on_the_cleaner() -> None:
    """Compaction uses the log, never the other way: recovery of an interrupted segment
    replacement is part of log loading (recovery.py), not a call back into the cleaner."""
    offenders = [
        f"{name}:{line}: {module}"
        for name in ("log.py", "recovery.py", "segment.py", "handles.py", "index.py")
        for line, module in imported_modules(STORAGE / name)
        if module.startswith("klamm.storage.cleaner")
    ]
    assert not offenders, "the log imports the cleaner:\n" + "\n".join(offenders)


def test_opening_a_log_completes_an_interrupted_swap(tmp_path: Path) -> None:
    directory = tmp_path / "p-0"
    config = LogConfig(segment_bytes=300, cleanup_policy=("compact",))
    plog = PartitionLog.open(directory, config, FakeClock())
    for _ in range(12):
        plog.append(make_batch(value_size=40))
    first, second, third = sorted(directory.glob("*.log"))[:3]
    plog.close()
    # A committed replacement of the first two segments, holding only the second's data.
    kept = second.read_bytes()
    swap = directory / f"{first.stem}-{third.stem}.log.swap"
    swap.write_bytes(kept)
    reopened = PartitionLog.open(directory, config, FakeClock())
    assert not swap.exists() and not second.exists()
    assert first.read_bytes() == kept
    assert reopened.read(0, len(kept)) == kept  # offset 0 is a gap now: reads skip to the next
    reopened.check_invariants()
    reopened.close()


def test_broker_imports_storage_only_through_its_package() -> None:
    """storage/__init__.py says the broker needs only what it exports: keep it true."""
    offenders = []
    for path in sorted(BROKER.rglob("*.py")):
        offenders += [
            f"{path.relative_to(BROKER)}:{line}: {module}"
            for line, module in imported_modules(path)
            if module.startswith("klamm.storage.")
        ]
    assert not offenders, "import klamm.storage internals:\n" + "\n".join(offenders)
