"""One precision per model, carried in its graph (runtime/precision.py): what `auto` chooses on each
CPU class (the flags faked), that a model keeps its precision whatever else the process loads,
that no code path switches a process-wide option, and that a bf16 SavedModel holds its matmuls
(and kernels) in bf16 and agrees with float32.

bf16 matmuls run on every CPU now that their casts are in the graph (emulated where the CPU has
no bf16 instructions), so the bf16 branch is tested here whatever machine runs the suite."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import fake_bf16_cpu, signal_texts, skipping_keras_3
from tfclf import TextClassifier, TfclfError
from tfclf.cli import main
from tfclf.runtime import precision

HAS_BF16 = {"AVX2": False, "AVX-512": False, "AVX512-BF16": True, "AMX": True}
PACKAGE = Path(__file__).resolve().parents[1] / "tfclf"


def test_no_code_path_switches_a_process_wide_precision_option():
    """The source, read: no Grappler option, no Keras global policy, no rewrite environment variable.
    (conftest's autouse fixture fails any test after which one is set: what the suite runs.)"""
    forbidden = re.compile(r"set_experimental_options|set_global_policy|auto_mixed_precision|"
                           r"TF_AUTO_MIXED_PRECISION|mixed_precision\.Policy\(")
    found = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}" for path in sorted(PACKAGE.rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if forbidden.search(line)]
    assert not found, found


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_auto_chooses_per_cpu_class_and_task(cpu_class, task):
    fast = HAS_BF16[cpu_class]
    assert precision.for_training("auto") == ("matmul_bfloat16" if fast else "float32")
    assert precision.for_prediction("auto", task) == ("matmul_bfloat16" if fast and task != "multilabel" else "float32")
    assert precision.for_prediction("matmul_bfloat16", task) == ("matmul_bfloat16" if fast else "float32")
    for name in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert precision.for_training(name) == precision.for_prediction(name, task) == name
    if fast:
        precision.require("matmul_bfloat16")
    else:
        with pytest.raises(TfclfError, match="AVX512-BF16 or AMX"):
            precision.require("matmul_bfloat16")


def test_the_test_switch_forces_a_branch_whatever_the_cpu(cpu_class, monkeypatch):
    monkeypatch.setenv(precision.FORCE, "matmul_bfloat16")
    assert precision.for_training("auto") == precision.for_prediction("auto", "binary") == "matmul_bfloat16"
    assert precision.for_prediction("auto", "multilabel") == "float32"  # the task's rule still holds
    precision.require("matmul_bfloat16")  # passes: the suite runs the bf16 branch on any CPU
    monkeypatch.setenv(precision.FORCE, "float32")
    assert precision.for_training("auto") == precision.for_prediction("auto", "binary") == "float32"
    monkeypatch.setenv(precision.FORCE, "bf16")
    with pytest.raises(TfclfError, match="TFCLF_TEST_PRECISION must be"):
        precision.for_training("auto")


def _matmul_dtypes(graph) -> list[str]:
    """The T of every MatMul and BatchMatMul in a graph and the functions it calls."""
    from tensorflow.core.framework import types_pb2

    graph = graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return [types_pb2.DataType.Name(n.attr["T"].type) for n in nodes if n.op in ("MatMul", "BatchMatMulV2")]


def _layers(tiny_run) -> int:
    from tfclf.models import backbones

    return backbones.backbone_config(tiny_run / "run" / "backbone").num_layers


def _prediction_graph(clf):
    import tensorflow as tf

    spec = tf.TensorSpec([None, None], tf.int32)
    return clf.run_.reader.predictor.traced(clf.model, {"input_ids": spec, "attention_mask": spec}).get_concrete_function().graph


def test_auto_predicts_with_bf16_matmuls_where_the_cpu_has_them(cpu_class, tiny_run):
    clf = TextClassifier.load(tiny_run / "run")  # the run's own precision: auto
    assert clf.config.precision == "auto"
    expected = "matmul_bfloat16" if HAS_BF16[cpu_class] else "float32"
    assert clf.prediction_precision == expected
    # per layer 4 dense + 2 attention products in bf16 where the model is; the head stays float32
    dtypes = _matmul_dtypes(_prediction_graph(clf))
    assert dtypes.count("DT_BFLOAT16") == (6 * _layers(tiny_run) if HAS_BF16[cpu_class] else 0) and "DT_FLOAT" in dtypes
    assert TextClassifier.load(tiny_run / "run", precision="float32").prediction_precision == "float32"
    assert clf.prediction_precision == expected  # the other model loaded changed nothing of this one
    if HAS_BF16[cpu_class]:
        assert TextClassifier.load(tiny_run / "run", precision="matmul_bfloat16").prediction_precision \
            == "matmul_bfloat16"
    else:
        with pytest.raises(TfclfError, match="AVX512-BF16 or AMX"):
            TextClassifier.load(tiny_run / "run", precision="matmul_bfloat16")
    with pytest.raises(TfclfError, match="for prediction"):
        TextClassifier.load(tiny_run / "run", precision="mixed_float16")  # a layer policy: fixed at training


def test_auto_trains_multilabel_with_bf16_matmuls_and_predicts_it_in_float32(tiny_bert, monkeypatch):
    """A multi-label text changes its label set when any label crosses its threshold: bf16 changed
    1.7 % of GoEmotions dev's, so `auto` predicts multi-label in float32 even on a bf16 CPU (the
    model trained in bf16, copied into a float32 one); asking for matmul_bfloat16 still gets it."""
    from tfclf.models import backbones

    fake_bf16_cpu(monkeypatch)
    built = []
    real = backbones.build_backbone
    monkeypatch.setattr(backbones, "build_backbone", lambda *a, **k: built.append(a[2] if len(a) > 2 else
                                                                                   k.get("precision")) or real(*a, **k))
    X, y = signal_texts(60, 0)
    y = [[label] + (["long"] if len(text) > 30 else []) for text, label in zip(X, y)]
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="multilabel", epochs=1, batch_size=16, max_length=16)
    clf.fit(X, y, verbose=0)
    assert built == ["matmul_bfloat16"]  # trained with bf16 matmuls
    assert clf.prediction_precision == "float32"
    assert set(_matmul_dtypes(_prediction_graph(clf))) == {"DT_FLOAT"}


@pytest.mark.parametrize("command", ["predict", "evaluate", "explain"])
def test_the_commands_predict_in_the_precision_asked(command, tiny_run, tmp_path, monkeypatch, capsys):
    from tfclf import runs

    fake_bf16_cpu(monkeypatch)
    seen = []
    real = runs.load
    monkeypatch.setattr(runs, "load", lambda *a, **k: (lambda run: seen.append(run.model.precision) or run)(
        real(*a, **k)))
    base = {"predict": ["--text", "the team won"], "evaluate": ["--data", str(tiny_run / "valid.csv")],
            "explain": ["--text", "the team won", "--steps", "2", "--out", str(tmp_path / "x.html")]}[command]
    for flag, expected in (([], "matmul_bfloat16"), (["--precision", "float32"], "float32"),
                           (["--precision", "auto"], "matmul_bfloat16")):
        assert main([command, "--run", str(tiny_run / "run"), *base, *flag]) == 0, capsys.readouterr().err
        assert seen[-1] == expected, flag
    fake_bf16_cpu(monkeypatch, has=False)
    assert main([command, "--run", str(tiny_run / "run"), *base, "--precision", "matmul_bfloat16"]) == 2
    assert "AVX512-BF16 or AMX" in capsys.readouterr().err


@pytest.fixture(scope="module")
def saved_models(tiny_run, exported, tmp_path_factory) -> dict:
    """tiny_run's SavedModels by precision, read (never written) by the two tests below: float32 the
    session's (`exported`: float32 is float32 whatever the run predicts in), bfloat16 written here by
    `tfclf export --precision bfloat16`. An export costs 3-6 s."""
    out = tmp_path_factory.mktemp("bf16-export")
    assert main(["export", "--run", str(tiny_run / "run"), "--out", str(out), "--precision", "bfloat16"]) == 0
    return {"float32": exported[1], "bfloat16": out / "1"}


def test_a_bfloat16_export_runs_its_matmuls_in_bf16_and_agrees_with_float32(tiny_run, saved_models):
    import tensorflow as tf

    from tfclf.serving.export import load_saved_model, predict_saved_model

    f32, bf16 = (load_saved_model(saved_models[name]) for name in ("float32", "bfloat16"))
    assert set(_matmul_dtypes(f32.signatures["serving_default"].graph)) == {"DT_FLOAT"}
    # the encoder's 4 matmuls per layer and its 2 attention products in bf16; the head stays float32
    dtypes = _matmul_dtypes(bf16.signatures["serving_default"].graph)
    assert dtypes.count("DT_BFLOAT16") == 6 * _layers(tiny_run) and "DT_FLOAT" in dtypes
    # the bf16 SavedModel keeps those kernels in bf16 (cast once, at export), the float32 one none
    def stored_dtypes(name):
        return tf.train.load_checkpoint(str(saved_models[name] / "variables" / "variables")) \
            .get_variable_to_dtype_map().values()

    assert list(stored_dtypes("bfloat16")).count(tf.bfloat16) == 4 * _layers(tiny_run) and tf.bfloat16 not in stored_dtypes("float32")
    texts = pd.read_csv(tiny_run / "valid.csv")["text"].tolist()
    a, b = predict_saved_model(f32, texts), predict_saved_model(bf16, texts)
    assert np.mean(a["label"] == b["label"]) >= 0.99
    difference = np.abs(a["probabilities"] - b["probabilities"]).max()
    assert 0 < difference < 0.05, difference  # bf16 moves the numbers, a little


_FRESH = """
import json, sys
import numpy as np
from tfclf import TextClassifier
from tfclf.serving.export import load_saved_model, predict_saved_model
run, saved, texts, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
np.savez(out, model=TextClassifier.load(run, precision="float32").predict_proba(texts),
         saved=predict_saved_model(load_saved_model(saved), texts)["probabilities"])
"""


def test_models_of_two_precisions_in_one_process_each_keep_theirs(tiny_run, saved_models, tmp_path, monkeypatch):
    """float32 and bf16 models, and float32 and bf16 SavedModels, loaded in one process in either
    order: each gives its own numbers, and the float32 ones a fresh float32 process's to 1e-6."""
    from tfclf.serving.export import load_saved_model, predict_saved_model

    fake_bf16_cpu(monkeypatch)
    texts = pd.read_csv(tiny_run / "valid.csv")["text"].tolist()[:40]
    run = tiny_run / "run"
    saved = {"f32": saved_models["float32"], "bf16": saved_models["bfloat16"]}
    fresh = tmp_path / "fresh.npz"
    subprocess.run([sys.executable, "-c", _FRESH, str(run), str(saved["f32"]), json.dumps(texts),
                    str(fresh)], check=True, capture_output=True, env=skipping_keras_3())
    reference = np.load(fresh)

    def model_numbers(order):
        found = {}
        for name in order:
            found[name] = TextClassifier.load(run, precision=name)
        return {name: clf.predict_proba(texts) for name, clf in found.items()}

    def saved_numbers(order):
        loaded = {name: load_saved_model(saved[name]) for name in order}
        return {name: predict_saved_model(m, texts)["probabilities"] for name, m in loaded.items()}

    for order in (("float32", "matmul_bfloat16"), ("matmul_bfloat16", "float32")):
        numbers = model_numbers(order)
        np.testing.assert_allclose(numbers["float32"], reference["model"], atol=1e-6)
        assert np.abs(numbers["matmul_bfloat16"] - reference["model"]).max() > 1e-5  # bf16 really ran
    for order in (("f32", "bf16"), ("bf16", "f32")):
        numbers = saved_numbers(order)
        np.testing.assert_allclose(numbers["f32"], reference["saved"], atol=1e-6)
        assert np.abs(numbers["bf16"] - reference["saved"]).max() > 1e-5
    np.testing.assert_allclose(reference["saved"], reference["model"], atol=1e-6)


def test_export_refuses_what_it_cannot_write(tiny_run, tmp_path, capsys):
    assert main(["export", "--run", str(tiny_run / "run"), "--out", str(tmp_path / "hf"), "--format",
                 "huggingface", "--precision", "bfloat16"]) == 2
    assert "SavedModels" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # argparse's choices, said in one line
        main(["export", "--run", str(tiny_run / "run"), "--out", str(tmp_path / "x"), "--precision", "float16"])
    assert exited.value.code == 2 and "invalid choice: 'float16'" in capsys.readouterr().err
    assert not (tmp_path / "hf").exists() and not (tmp_path / "x").exists()
