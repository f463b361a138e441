"""The house: sub-packages in the order data flows, lower rooms never importing higher ones, no
import cycle, no module over 300 lines (docs/ARCHITECTURE.md draws it).

Every import counts, those inside functions too: a lazy import is still a dependency (the
cycle classifier -> metrics -> run_folder -> report -> classifier hid in three of them)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tfclf"

# Bottom to top. A room imports from the rooms of lower layers only (and from itself); the rooms
# of one layer do not import each other.
LAYERS = [
    ("tfclf.errors",),
    ("tfclf.console",),
    ("tfclf.runtime",),
    ("tfclf.tasks",),
    ("tfclf.config",),
    ("tfclf.storage",),
    ("tfclf.data",),
    ("tfclf.text",),
    ("tfclf.models",),
    ("tfclf.training", "tfclf.serving", "tfclf.evaluation"),
    ("tfclf.readers",),
    ("tfclf.trained",),
    ("tfclf.runs",),
    ("tfclf.classifier",),
    ("tfclf.cli", "tfclf"),  # tfclf/__init__.py names the public API, lazily
    ("tfclf.__main__",),
]
ROOMS = {room: layer for layer, rooms in enumerate(LAYERS) for room in rooms}
MAX_LINES = 300


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The tfclf modules `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "tfclf"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tfclf":
            for alias in node.names:  # `from tfclf.training import fit` imports the module tfclf.training.fit
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return found


def room(module: str) -> str | None:
    """The longest room prefix of `module`: tfclf.training.fit is in tfclf.training."""
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        if ".".join(parts[:n]) in ROOMS:
            return ".".join(parts[:n])
    return module if module in ROOMS else None  # "tfclf" itself is only the package's __init__


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(package)
    return {name: imports(path, known) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles, each as the path that closes it (depth-first search)."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_every_module_has_a_room():
    homeless = [name for name in modules() if room(name) is None]
    assert not homeless, f"place these in LAYERS (and docs/ARCHITECTURE.md): {homeless}"


def test_lower_rooms_never_import_higher_ones():
    wrong = []
    for name, targets in graph().items():
        here = room(name)
        for target in targets:
            there = room(target)
            if here is None or there is None or there == here:
                continue
            if ROOMS[there] >= ROOMS[here]:
                wrong.append(f"{name} (layer {ROOMS[here]}) imports {target} (layer {ROOMS[there]})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle(tmp_path):
    """The check itself, on a made-up package whose three modules import in a circle."""
    package = tmp_path / "tfclf"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, imported in (("a", "b"), ("b", "c"), ("c", "a")):
        (package / f"{name}.py").write_text(f"def f():\n    from tfclf import {imported}\n")
    assert cycles(graph(package)) == [["tfclf.a", "tfclf.b", "tfclf.c", "tfclf.a"]]


def test_no_module_is_over_300_lines():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these where a concept ends: {long}"
