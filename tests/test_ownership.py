"""DESIGN.md §2 "Ownership": every piece of state has one owner that changes it through its own
methods; other modules call those methods, never `obj._private`.

Checked on the source of every module of klamm: an attribute access `obj._name` is a violation
unless it is the object's own (`self._x`, `cls._x`, `super()._x`), or a member of a class of the
same module (a module's classes may share their privates, as a module-private helper does), or
not klamm's state at all (a third-party module's names, such as librdkafka's local error codes
`KafkaError._PARTITION_EOF`, and namedtuple's documented `_replace`/`_asdict`).

Which class `obj` is: its annotation where it has one (a function's parameter or an annotated
local), else any class of the module defining `_name` counts as the module's own (a heuristic:
an unannotated receiver whose attribute name happens to be defined locally is not caught).

ALLOWED lists what remains, each entry with its reason. It should only shrink: an entry that no
longer matches anything fails too, so removing a violation means removing its entry.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "klamm"

# namedtuple's public API is spelled with a leading underscore to keep it out of field names.
NAMEDTUPLE_API = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})

# Annotations that say nothing of the class (`other: object` before an isinstance check).
UNINFORMATIVE = frozenset({None, "object", "Any"})

# The raw librdkafka messages behind a batch: client/messages.py keeps them private so users see
# only KafkaMessage, and the client's own run loop (runner.py, payloads.py) reads them to commit
# and to build columns without an object per message (bench/client_vs_raw.py: each_batch).
_RAW_MESSAGES = "the client's run loop reads the raw librdkafka messages behind a batch"

# (module relative to src/klamm, expression) -> why it is still allowed.
ALLOWED: dict[tuple[str, str], str] = {
    ("client/payloads.py", "self.messages._raws"): _RAW_MESSAGES,
    ("client/runner.py", "m._raw"): _RAW_MESSAGES,
    ("client/runner.py", "messages._raws"): _RAW_MESSAGES,
}


@dataclasses.dataclass(frozen=True, order=True)
class Access:
    module: str  # relative to src/klamm
    line: int
    expr: str

    def __str__(self) -> str:
        return f"src/klamm/{self.module}:{self.line}: {self.expr}"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _root(node: ast.expr) -> ast.expr:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def _class_name(annotation: ast.expr | None) -> str | None:
    """The class an annotation names (`Foo`, `"Foo"`, `mod.Foo`, `Foo | None`), if one."""
    if annotation is None:
        return None
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        sides = [s for s in (annotation.left, annotation.right) if not _is_none(s)]
        return _class_name(sides[0]) if len(sides) == 1 else None
    if isinstance(annotation, ast.Name):
        return annotation.id
    if isinstance(annotation, ast.Attribute):
        return annotation.attr
    return None


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _foreign_names(tree: ast.Module) -> set[str]:
    """Names bound to other libraries' modules or objects, directly or by a module-level alias."""
    foreign: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            foreign.update(
                (a.asname or a.name).split(".")[0]
                for a in node.names
                if not a.name.startswith("klamm")
            )
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("klamm"):
                foreign.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, root = node.targets[0], _root(node.value)
            if isinstance(target, ast.Name) and isinstance(root, ast.Name) and root.id in foreign:
                foreign.add(target.id)
    return foreign


def _module_classes(tree: ast.Module) -> tuple[set[str], set[str]]:
    """The classes a module defines, and the private names they define (methods, class
    attributes, slots, `self._x` assignments)."""
    classes: set[str] = set()
    names: set[str] = set()
    for cls in ast.walk(tree):
        if not isinstance(cls, ast.ClassDef):
            continue
        classes.add(cls.name)
        for node in ast.walk(cls):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id in ("self", "cls"):
                    names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)  # __slots__ entries
    return classes, {n for n in names if _is_private(n)}


class _Finder(ast.NodeVisitor):
    def __init__(self, module: str, tree: ast.Module) -> None:
        self.module = module
        self.foreign = _foreign_names(tree)
        self.classes, self.own_names = _module_classes(tree)
        self.scopes: list[dict[str, str | None]] = [{}]
        self.found: list[Access] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        self.scopes.append({a.arg: _class_name(a.annotation) for a in args})
        self.generic_visit(node)
        self.scopes.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.scopes[-1][node.target.id] = _class_name(node.annotation)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        if _is_private(node.attr) and not self._allowed(node):
            self.found.append(Access(self.module, node.lineno, ast.unparse(node)))

    def _allowed(self, node: ast.Attribute) -> bool:
        receiver = node.value
        if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
            return True
        if isinstance(receiver, ast.Call) and _is_name(receiver.func, "super"):
            return True
        root = _root(receiver)
        if isinstance(root, ast.Name) and root.id in self.foreign:
            return True  # another library's object: not klamm's state
        if node.attr in NAMEDTUPLE_API:
            return True
        if isinstance(receiver, ast.Name):
            for scope in reversed(self.scopes):
                if receiver.id in scope:
                    annotated = scope[receiver.id]
                    if annotated not in UNINFORMATIVE:  # else narrowed by isinstance, maybe
                        return annotated in self.classes
                    break
        return node.attr in self.own_names


def _accesses() -> Iterator[Access]:
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        finder = _Finder(module, tree)
        finder.visit(tree)
        yield from finder.found


def test_no_module_reaches_into_another_modules_private_members() -> None:
    found = sorted(_accesses())
    violations = [a for a in found if (a.module, a.expr) not in ALLOWED]
    assert violations == [], (
        "private members of another module's objects (call a public method of the owner, or add "
        "one):\n" + "\n".join(str(a) for a in violations)
    )


def test_the_allow_list_only_lists_current_violations() -> None:
    current = {(a.module, a.expr) for a in _accesses()}
    stale = sorted(set(ALLOWED) - current)
    assert stale == [], "ALLOWED entries that no longer occur (remove them):\n" + "\n".join(
        f"{module}: {expr}" for module, expr in stale
    )


def test_the_finder_sees_through_annotations() -> None:
    """The check itself: an annotated receiver of another module's class is caught even when
    this module has a member of the same name; its own classes' privates are not."""
    source = (
        "from klamm.storage.log import PartitionLog\n"
        "class Cleaner:\n"
        "    def __init__(self) -> None:\n"
        "        self._lock = None\n"
        "    def clean(self, plog: PartitionLog, other: 'Cleaner') -> None:\n"
        "        plog._lock\n"
        "        other._lock\n"
        "        self._lock\n"
    )
    tree = ast.parse(source)
    finder = _Finder("example.py", tree)
    finder.visit(tree)
    assert [str(a) for a in finder.found] == ["src/klamm/example.py:6: plog._lock"]
