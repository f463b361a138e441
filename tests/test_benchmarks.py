"""benchmarks/ does not rot: every name a benchmark imports from tfclf exists (small_bert.py and
throughput.py imported modules removed two commits before anyone ran them), and the tfclf side
of family_speed runs on a tiny model in seconds (it generates its texts where ../shared is
absent). The other benchmarks have no smoke run yet: issue 43's harness."""
from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py"))


def _tfclf_imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) of every `import tfclf...` and `from tfclf... import name`, anywhere in the file,
    strings given to importlib.import_module included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tfclf":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "tfclf"]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" and node.args \
                and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("tfclf"):
            found.append((node.args[0].value, None))
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_tfclf_name_a_benchmark_imports_exists(script):
    compile(script.read_text(encoding="utf-8"), str(script), "exec")
    missing = []
    for module, name in _tfclf_imports(script):
        try:
            found = importlib.import_module(module)
        except ImportError as err:
            missing.append(f"{module} ({err})")
            continue
        if name is not None and not hasattr(found, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    assert not missing, f"{script.name} imports what tfclf no longer has: {missing}"


def test_family_speed_runs_on_a_tiny_model(tiny_bert):
    """Its tfclf side in-process (a fresh process per row is the script's own business); the
    OpenVINO rows' path is tests/test_openvino.py's."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        family_speed = importlib.import_module("family_speed")
    finally:
        sys.path.remove(str(BENCHMARKS))
    row = family_speed.child(str(tiny_bert), "float32", 32, 32, ["tensorflow"])
    assert row["train_texts"] == 32 and row["predict_texts"] == 32 and row["hidden"] == 32
    assert row["train_per_s"] > 0 and row["engines"]["tensorflow"]["predict_per_s"] > 0


def test_large_vocab_runs_on_a_tiny_shape():
    """Its tfclf side in-process on a 300-piece, 32-wide, one-layer shape: the folder it writes is
    read back, fitted and exported."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        large_vocab = importlib.import_module("large_vocab")
    finally:
        sys.path.remove(str(BENCHMARKS))
    row = large_vocab.child(300, 32, 1, 32)
    assert row["vocab"] == 300 and row["parameters"] > 300 * 32 and row["train_per_s"] > 0
    assert row["saved_model_mib"] >= 0 and row["fit_peak_rss_mib"] > 100 and row["export_s"] > 0
