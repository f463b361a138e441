"""bf16 inference: `auto` predicts with bf16 matmuls on CPUs that have them (the flags faked for
each CPU class), --precision float32 keeps float32, and `tfclf export --precision bfloat16`
puts the casts in the SavedModel's graph, where they run on any CPU and agree with float32."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfclf import TextClassifier, TfclfError
from tfclf.cli import main
from tfclf.runtime import precision

HAS_BF16 = {"AVX2": False, "AVX-512": False, "AVX512-BF16": True, "AMX": True}


def test_auto_predicts_with_bf16_matmuls_where_the_cpu_has_them(cpu_class, tiny_run):
    precision.use_matmul_bfloat16(False)
    clf = TextClassifier.load(tiny_run / "run")  # the run's own precision: auto
    assert clf.config.precision == "auto"
    assert precision.matmul_bfloat16_on() is HAS_BF16[cpu_class]
    assert clf.prediction_precision == ("matmul_bfloat16" if HAS_BF16[cpu_class] else "float32")
    TextClassifier.load(tiny_run / "run", precision="float32")  # the last model loaded decides
    assert not precision.matmul_bfloat16_on() and clf.prediction_precision == "float32"
    if HAS_BF16[cpu_class]:
        assert TextClassifier.load(tiny_run / "run", precision="matmul_bfloat16").prediction_precision \
            == "matmul_bfloat16"
    else:
        with pytest.raises(TfclfError, match="AVX512-BF16 or AMX"):
            TextClassifier.load(tiny_run / "run", precision="matmul_bfloat16")
    with pytest.raises(TfclfError, match="for prediction"):
        TextClassifier.load(tiny_run / "run", precision="mixed_float16")  # a layer policy: fixed at training


def test_auto_keeps_multilabel_predictions_in_float32(tiny_bert, monkeypatch):
    """A multi-label text changes its label set when any label crosses its threshold: bf16 changed
    1.7 % of GoEmotions dev's, so `auto` predicts multi-label in float32 even on a bf16 CPU;
    asking for matmul_bfloat16 still gets it."""
    from conftest import signal_texts

    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    X, y = signal_texts(60, 0)
    y = [[label] + (["long"] if len(text) > 30 else []) for text, label in zip(X, y)]
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="multilabel", epochs=1, batch_size=16, max_length=16)
    clf.fit(X, y, verbose=0)
    assert clf.prediction_precision == "float32" and not precision.matmul_bfloat16_on()
    assert precision.for_prediction("matmul_bfloat16", "multilabel") == "matmul_bfloat16"
    assert precision.for_prediction("auto", "multiclass") == "matmul_bfloat16"
    assert precision.for_prediction("auto", "multilabel") == "float32" and not precision.matmul_bfloat16_on()


@pytest.mark.parametrize("command", ["predict", "evaluate", "explain"])
def test_the_commands_predict_in_the_precision_asked(command, tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    base = {"predict": ["--text", "the team won"], "evaluate": ["--data", str(tiny_run / "valid.csv")],
            "explain": ["--text", "the team won", "--steps", "2", "--out", str(tmp_path / "x.html")]}[command]
    for flag, expected in (([], True), (["--precision", "float32"], False), (["--precision", "auto"], True)):
        precision.use_matmul_bfloat16(False)
        assert main([command, "--run", str(tiny_run / "run"), *base, *flag]) == 0, capsys.readouterr().err
        assert precision.matmul_bfloat16_on() is expected, flag
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    assert main([command, "--run", str(tiny_run / "run"), *base, "--precision", "matmul_bfloat16"]) == 2
    assert "AVX512-BF16 or AMX" in capsys.readouterr().err


def _matmul_dtypes(loaded) -> list[str]:
    """The T of every MatMul and BatchMatMul in the serving signature's graph and the functions it calls."""
    from tensorflow.core.framework import types_pb2

    graph = loaded.signatures["serving_default"].graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return [types_pb2.DataType.Name(n.attr["T"].type) for n in nodes if n.op in ("MatMul", "BatchMatMulV2")]


def test_a_bfloat16_export_runs_its_matmuls_in_bf16_and_agrees_with_float32(tiny_run, tmp_path, capsys):
    from tfclf.serving.export import load_saved_model, predict_saved_model

    for name in ("float32", "bfloat16"):
        assert main(["export", "--run", str(tiny_run / "run"), "--out", str(tmp_path / name), "--precision",
                     name]) == 0
    f32, bf16 = (load_saved_model(tmp_path / name / "1") for name in ("float32", "bfloat16"))
    assert set(_matmul_dtypes(f32)) == {"DT_FLOAT"}
    # the encoder's 4 matmuls per layer and its 2 attention products in bf16; the head stays float32
    assert _matmul_dtypes(bf16).count("DT_BFLOAT16") == 6 * 2 and "DT_FLOAT" in _matmul_dtypes(bf16)
    texts = pd.read_csv(tiny_run / "valid.csv")["text"].tolist()
    a, b = predict_saved_model(f32, texts), predict_saved_model(bf16, texts)
    assert np.mean(a["label"] == b["label"]) >= 0.99
    difference = np.abs(a["probabilities"] - b["probabilities"]).max()
    assert 0 < difference < 0.05, difference  # bf16 moves the numbers, a little


def test_export_refuses_what_it_cannot_write(tiny_run, tmp_path, capsys):
    assert main(["export", "--run", str(tiny_run / "run"), "--out", str(tmp_path / "hf"), "--format",
                 "huggingface", "--precision", "bfloat16"]) == 2
    assert "SavedModels" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # argparse's choices, said in one line
        main(["export", "--run", str(tiny_run / "run"), "--out", str(tmp_path / "x"), "--precision", "float16"])
    assert exited.value.code == 2 and "invalid choice: 'float16'" in capsys.readouterr().err
    assert not (tmp_path / "hf").exists() and not (tmp_path / "x").exists()
