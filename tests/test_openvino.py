"""OpenVINO as the prediction engine (serving/openvino.py): the same run through both engines gives
the same probabilities (float32 within 1e-5; bf16 within bf16's rounding, conftest.BF16_ATOL),
from the Python API and the CLI, for single texts and sentence pairs; which engine runs is said
in one line when it cannot."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import BF16_ATOL
from tfclf import TextClassifier, TfclfError
from tfclf.cli import main
from tfclf.serving import openvino

pytest.importorskip("openvino", reason="the openvino extra is not installed (make test installs it)")


@pytest.fixture(scope="module")
def ov_run(tiny_run, tmp_path_factory):
    """tiny_run's run folder, copied: loading on OpenVINO writes its converted model into the run."""
    import shutil

    return shutil.copytree(tiny_run / "run", tmp_path_factory.mktemp("openvino") / "run")


@pytest.fixture(scope="module")
def first_float32_load(tiny_run, tmp_path_factory):
    """Another copy of tiny_run's run and its first load on OpenVINO in float32, which converts the
    model and caches it there: the float32 test compares its predictions, the cache test copies the
    folder it left (a conversion takes seconds; each test making its own would repeat it)."""
    import shutil

    run = shutil.copytree(tiny_run / "run", tmp_path_factory.mktemp("openvino-float32") / "run")
    return run, TextClassifier.load(run, precision="float32", engine="openvino")


def test_both_engines_give_the_same_probabilities_in_float32(tiny_run, first_float32_load, capsys):
    ov_run, ov_clf = first_float32_load
    texts = pd.read_csv(tiny_run / "valid.csv")["text"].tolist()
    tf_clf = TextClassifier.load(ov_run, precision="float32")
    assert isinstance(ov_clf.run_.engine_model, openvino.OpenVINOModel) and tf_clf.run_.engine_model is None
    expected = tf_clf.predict_proba(texts)
    np.testing.assert_allclose(ov_clf.predict_proba(texts), expected, atol=1e-5)
    assert ov_clf.evaluate(tiny_run / "valid.csv")["accuracy"] == tf_clf.evaluate(tiny_run / "valid.csv")["accuracy"]
    capsys.readouterr()
    assert main(["predict", "--run", str(ov_run), "--engine", "openvino", "--precision", "float32",
                 "--text", texts[0], "--text", texts[1]]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    np.testing.assert_allclose([[r["probabilities"][c] for c in tf_clf.classes_] for r in rows], expected[:2],
                               atol=1e-5)


def test_a_bf16_model_runs_on_openvino_within_bf16s_rounding(tiny_run, ov_run, monkeypatch):
    monkeypatch.setenv("TFCLF_TEST_PRECISION", "matmul_bfloat16")  # the branch bf16 CPUs take, on any CPU
    texts = pd.read_csv(tiny_run / "valid.csv")["text"].tolist()
    reference = TextClassifier.load(ov_run, precision="float32").predict_proba(texts)
    clf = TextClassifier.load(ov_run, precision="matmul_bfloat16", engine="openvino")
    assert clf.run_.engine_model.precision == "matmul_bfloat16"
    np.testing.assert_allclose(clf.predict_proba(texts), reference, atol=BF16_ATOL)


def test_which_engine_runs_is_chosen_in_one_place(monkeypatch):
    assert openvino.choose("auto", two_stages=False) == "openvino"
    assert openvino.choose("auto", two_stages=True) == "tensorflow"  # stage 2 reads chunk embeddings
    assert openvino.choose("tensorflow", two_stages=False) == "tensorflow"
    with pytest.raises(TfclfError, match="a hierarchical run predicts in TensorFlow"):
        openvino.choose("openvino", two_stages=True)
    with pytest.raises(TfclfError, match="engine must be one of auto, tensorflow, openvino"):
        openvino.choose("onnx", two_stages=False)
    monkeypatch.setattr(openvino, "installed", lambda: False)
    assert openvino.choose("auto", two_stages=False) == "tensorflow"
    with pytest.raises(TfclfError, match=r"pip install 'tfclf\[openvino\]'"):
        openvino.choose("openvino", two_stages=False)


def test_the_converted_model_is_cached_in_the_run_folder_once(tiny_run, first_float32_load, tmp_path, monkeypatch,
                                                              capsys):
    import shutil

    # the run folder as the first load on OpenVINO left it (the fixture's load of a fresh copy)
    first_run, first = first_float32_load
    run = shutil.copytree(first_run, tmp_path / "run")
    texts = pd.read_csv(tiny_run / "valid.csv")["text"].tolist()[:20]
    (cache,) = (run / "openvino").iterdir()
    assert cache.name.endswith("-float32") and (cache / "model.xml").is_file() and (cache / "model.bin").is_file()
    converted = []
    monkeypatch.setattr(openvino, "convert", lambda model: converted.append(model))  # a second load must not convert
    again = TextClassifier.load(run, precision="float32", engine="openvino")
    assert converted == []
    np.testing.assert_allclose(again.predict_proba(texts), first.predict_proba(texts), atol=1e-6)
    monkeypatch.undo()
    shutil.rmtree(run / "openvino")
    monkeypatch.setattr(openvino, "replace_folder", lambda *a: (_ for _ in ()).throw(PermissionError(13, "denied")))
    capsys.readouterr()
    unwritable = TextClassifier.load(run, precision="float32", engine="openvino")  # predicts all the same
    assert "could not cache the converted model" in capsys.readouterr().err
    np.testing.assert_allclose(unwritable.predict_proba(texts), first.predict_proba(texts), atol=1e-6)


def test_int8_is_calibrated_on_the_texts_given_and_keeps_the_decisions(tiny_run, ov_run, monkeypatch):
    valid = pd.read_csv(tiny_run / "valid.csv")
    texts = valid["text"].tolist()
    reference = TextClassifier.load(ov_run, precision="float32")
    with monkeypatch.context() as patched, \
            pytest.raises(TfclfError, match="calibrated on texts like the ones it will read"):
        # the refusal comes from openvino.quantized, which runs after the conversion: a conversion
        # that is thrown away (the conversion itself is tested by every other load here)
        patched.setattr(openvino, "convert", lambda model: None)
        TextClassifier.load(ov_run, precision="int8", engine="openvino")
    with pytest.raises(TfclfError, match="precision 'int8' runs on OpenVINO"):
        TextClassifier.load(ov_run, precision="int8")
    clf = TextClassifier.load(ov_run, precision="int8", engine="openvino", calibration=texts[:64])
    assert clf.prediction_precision == "int8"
    agreement = np.mean(np.array(clf.predict(texts)) == np.array(reference.predict(texts)))
    assert agreement >= 0.95, agreement  # the tiny model's decisions; docs/BENCHMARKS.md measures real ones
    assert np.abs(clf.predict_proba(texts) - reference.predict_proba(texts)).max() < 0.2
    # the CLI: --calibration is the validation file, read by the run's columns (its first 300 rows)
    assert main(["predict", "--run", str(ov_run), "--engine", "openvino", "--precision", "int8", "--calibration",
                 str(tiny_run / "valid.csv"), "--text", texts[0]]) == 0
    assert main(["predict", "--run", str(ov_run), "--precision", "int8", "--text", texts[0]]) == 2
    caches = [p for p in (ov_run / "openvino").iterdir() if "-int8-" in p.name]
    assert len(caches) == 2  # one per calibration set: 64 texts from Python, the file's 150 from the CLI
    assert all("FakeQuantize" in (c / "model.xml").read_text() for c in caches)  # quantized, not float32 renamed
