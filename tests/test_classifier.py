"""End to end on tiny random checkpoints: each task learns a cue-word signal, saves, loads, predicts."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import FAST, fake_bf16_cpu, multilabel_texts, signal_texts
from tfclf import TextClassifier
from tfclf.cli import main
from tfclf.models.heads import build_classifier, build_text_model
from tfclf.tasks import loss as loss_for
from tfclf.text.wordpiece import TokenizerSpec, WordPieceTokenizer



@pytest.mark.precision
@pytest.mark.parametrize("checkpoint", ["tiny_bert", "tiny_distilbert"])
def test_binary_learns_and_round_trips(checkpoint, request, tmp_path):
    X, y = signal_texts(500, 0)
    Xv, yv = signal_texts(150, 1)
    clf = TextClassifier.from_pretrained(str(request.getfixturevalue(checkpoint)), task="binary", **FAST)
    clf.fit(X, y, valid=Xv, valid_labels=yv, run_dir=tmp_path / "run", verbose=0)
    result = clf.evaluate(Xv, yv)
    assert result["accuracy"] > 0.9, result
    assert clf.predict(["good film", "awful film"]) == ["pos", "neg"]
    again = TextClassifier.load(tmp_path / "run")
    np.testing.assert_allclose(again.predict_proba(Xv), clf.predict_proba(Xv), atol=1e-6)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["valid"]["accuracy"] == pytest.approx(result["accuracy"])


def test_multilabel_learns_tunes_thresholds_and_records_both(tiny_multilabel_run, tmp_path):
    run = shutil.copytree(tiny_multilabel_run, tmp_path / "run")  # the report below writes into it
    clf = TextClassifier.load(run)
    Xv, yv = multilabel_texts(200, 1)
    result = clf.evaluate(Xv, yv)
    assert result["macro_f1"] > 0.9 and result["subset_accuracy"] > 0.8, result
    assert clf.predict(["love the team", "the day"]) == [["pos", "sport"], []]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["valid"]
    assert set(saved) >= {"macro_f1", "hamming_loss", "hamming_score", "subset_accuracy", "macro_roc_auc",
                          "per_label", "at_0.5"}
    thresholds = json.loads((tmp_path / "run" / "thresholds.json").read_text())
    assert set(thresholds) == {"pos", "sport"} and all(0.05 <= t <= 0.95 for t in thresholds.values())
    assert TextClassifier.load(tmp_path / "run").thresholds.tolist() == list(thresholds.values())
    from tfclf.evaluation.report import write_report

    write_report(tmp_path / "run")
    for plot in ("learning_curves.png", "per_label_f1_validation.png", "pr_curves_validation.png"):
        assert (tmp_path / "run" / "plots" / plot).stat().st_size > 10_000, plot


def test_notebook_path_model_fit_on_raw_strings(tiny_bert):
    """The public builders give a plain Keras model that fits a tf.data dataset of strings."""
    from tfclf.models import backbones

    spec = TokenizerSpec.from_directory(tiny_bert)
    backbone = backbones.build_backbone(backbones.backbone_config(tiny_bert), tiny_bert)
    classifier = build_classifier(backbone, num_outputs=2)
    model = build_text_model(WordPieceTokenizer(spec, max_length=32), classifier)
    assert isinstance(model, keras.Model)
    X, y = signal_texts(400, 0)
    labels = np.array([0 if v == "neg" else 1 for v in y])
    data = tf.data.Dataset.from_tensor_slices((X, labels)).shuffle(400, seed=0).batch(16).prefetch(2)
    model.compile(keras.optimizers.Adam(3e-3), loss_for("multiclass"), metrics=["accuracy"])
    history = model.fit(data, epochs=4, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    probs = build_text_model(WordPieceTokenizer(spec, max_length=32), classifier, task="multiclass")(
        tf.constant(["good day", "bad day"])).numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-6)
    assert probs[0, 1] > 0.5 > probs[1, 1]


def test_cli_train_evaluate_predict(tiny_run, tmp_path, capsys):
    run = tiny_run / "run"
    for name in ("config.json", "labels.json", "thresholds.json", "history.csv", "metrics.json",
                 "weights/model.index", "backbone/vocab.txt", "backbone/config.json"):
        assert (run / name).exists(), name
    assert len(pd.read_csv(run / "history.csv")) >= 2
    assert any((run / "logs").rglob("events.out.tfevents.*"))  # TensorBoard
    capsys.readouterr()
    test = tmp_path / "test.jsonl"
    texts, labels = signal_texts(60, 7, classes=("sport", "politics", "tech"))
    test.write_text("".join(json.dumps({"text": t, "labels": l}) + "\n" for t, l in zip(texts, labels)))
    assert main(["evaluate", "--run", str(run), "--data", str(test)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["accuracy"] > 0.9 and set(printed["per_class"]) == {"politics", "sport", "tech"}
    assert json.loads((run / "metrics.json").read_text())[str(test)]["accuracy"] == printed["accuracy"]

    assert main(["predict", "--run", str(run), "--data", str(test), "--out", str(tmp_path / "p.csv")]) == 0
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert (predictions["prediction"] == labels).mean() > 0.9
    np.testing.assert_allclose(predictions[["p_politics", "p_sport", "p_tech"]].sum(axis=1), 1, atol=1e-5)
    capsys.readouterr()
    assert main(["predict", "--run", str(run), "--text", "the team game", "--text", "a vote on the law"]) == 0
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [l["label"] for l in lines] == ["sport", "politics"]

    assert main(["report", "--run", str(run)]) == 0
    report = (run / "report.md").read_text()
    for plot in ("learning_curves.png", "confusion_matrix_validation.png", f"confusion_matrix_{test.name}.png"):
        assert (run / "plots" / plot).stat().st_size > 10_000, plot
        assert f"(plots/{plot})" in report
    assert "| accuracy |" in report


@pytest.mark.precision
def test_seeded_runs_repeat(tiny_bert):
    X, y = signal_texts(200, 0)
    runs = [TextClassifier.from_pretrained(str(tiny_bert), task="binary", epochs=1, batch_size=16, max_length=32,
                                           seed=5).fit(X, y, verbose=0).predict_proba(X[:20]) for _ in range(2)]
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-5)


def test_matmul_bfloat16_runs_the_matmuls_in_bf16_and_keeps_everything_else_float32(tiny_bert, tmp_path, monkeypatch):
    import tf_keras as keras

    fake_bf16_cpu(monkeypatch)  # the casts are in the graph: bf16 runs on any CPU, emulated where it has none
    X, y = signal_texts(400, 0)
    Xv, yv = signal_texts(100, 1)
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", **FAST, precision="matmul_bfloat16")
    clf.fit(X, y, valid=Xv, valid_labels=yv, run_dir=tmp_path / "run", verbose=0)
    assert clf.prediction_precision == "matmul_bfloat16"
    assert clf.evaluate(Xv, yv)["accuracy"] > 0.9
    # float32 layers and weights: only the matmuls cast to bf16
    assert {v.dtype.name for v in clf.model.weights} == {"float32"}
    assert keras.mixed_precision.global_policy().name == "float32"
    rewritten = clf.predict_proba(Xv)
    exact = clf.model.in_precision("float32")  # the same weights, in float32
    assert exact.precision == "float32" and clf.model.precision == "matmul_bfloat16"
    # bf16 keeps 8 bits of mantissa: the logits move, but only a little
    moved = np.abs(logits_of(clf.model, clf, Xv) - logits_of(exact, clf, Xv))
    assert 1e-5 < moved.max() < 0.05 * np.abs(logits_of(exact, clf, Xv)).max(), moved.max()
    again = TextClassifier.load(tmp_path / "run")  # the run folder records it: loading builds it so again
    assert again.config.precision == "matmul_bfloat16" and again.prediction_precision == "matmul_bfloat16"
    np.testing.assert_allclose(again.predict_proba(Xv), rewritten, atol=1e-5)
    np.testing.assert_allclose(logits_of(TextClassifier.load(tmp_path / "run", precision="float32").model, clf, Xv),
                               logits_of(exact, clf, Xv), atol=1e-5)


def logits_of(model, clf, texts):
    """The logits of `clf`'s run through `model` (another model of the same weights, say)."""
    return clf.reader.logits(model, texts, clf.labels.num_outputs, None, False)


@pytest.fixture(scope="module")
def auto_fits(tiny_bert) -> dict:
    """`auto` fits of one binary task, on a faked CPU with bf16 matmuls and on one without:
    {has_bf16: (the classifier, the precisions its backbones were built in)}."""
    from tfclf.models import backbones

    X, y = signal_texts(400, 0)
    real, found = backbones.build_backbone, {}
    for has_bf16 in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            fake_bf16_cpu(patch, has_bf16)
            built = []
            patch.setattr(backbones, "build_backbone", lambda *a, **k: built.append(a[2]) or real(*a, **k))
            clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", **FAST)
            assert clf.config.precision == "auto"
            found[has_bf16] = (clf.fit(X, y, verbose=0), built)
    return found


def test_auto_precision_is_bf16_matmuls_while_training_on_bf16_cpus_only(auto_fits):
    """The decision on both branches, whatever this CPU is: the flags are faked."""
    from tfclf.runtime import precision

    X, y = signal_texts(400, 0)
    for has_bf16, (clf, built) in auto_fits.items():
        expected = "matmul_bfloat16" if has_bf16 else "float32"
        assert built == [expected]  # the model trained was built so, and predicts so (single-label)
        assert clf.prediction_precision == expected
        assert clf.evaluate(X, y)["accuracy"] > 0.9
    assert precision.for_training("float32") == "float32"


def test_auto_precision_really_trains_with_bf16_matmuls_on_a_bf16_cpu(auto_fits):
    X, _ = signal_texts(400, 0)
    auto, exact = auto_fits[True][0], auto_fits[False][0]  # the same seed in float32 ends with other weights
    assert np.abs(exact.predict_proba(X[:50]) - auto.predict_proba(X[:50])).max() > 1e-5


def test_explicit_bf16_on_a_cpu_without_bf16_is_refused_and_a_bf16_run_still_loads(tiny_bert, tiny_run, tmp_path,
                                                                                    monkeypatch, capsys):
    from tfclf import TfclfError

    fake_bf16_cpu(monkeypatch, has=False)
    X, y = signal_texts(50, 0)
    with pytest.raises(TfclfError, match="AVX512-BF16 or AMX"):
        TextClassifier.from_pretrained(str(tiny_bert), task="binary", **FAST, precision="matmul_bfloat16").fit(X, y)
    for command in (["train", "--train", str(tiny_run / "train.csv"), "--task", "multiclass", "--out",
                     str(tmp_path / "run")], ["pretrain", "--text", str(tiny_run / "train.csv"), "--out",
                                              str(tmp_path / "lm")]):
        assert main([*command, "--model", str(tiny_bert), "--precision", "matmul_bfloat16"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "use --precision auto or float32" in err, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "lm").exists()
    # a run trained with bf16 matmuls on another machine loads here, and predicts in float32
    config = json.loads((tiny_run / "run" / "config.json").read_text())
    bf16_run = tmp_path / "bf16-run"
    shutil.copytree(tiny_run / "run", bf16_run)
    (bf16_run / "config.json").write_text(json.dumps({**config, "precision": "matmul_bfloat16"}))
    loaded = TextClassifier.load(bf16_run)
    assert loaded.prediction_precision == "float32"
    np.testing.assert_allclose(loaded.predict_proba(X), TextClassifier.load(tiny_run / "run").predict_proba(X),
                               atol=1e-6)


def one_width_texts(n: int, seed: int):
    """signal_texts of 7-14 words: 9-16 tokens, so that every batch is 16 tokens wide at max_length 16."""
    texts, labels = signal_texts(2 * n, seed)
    kept = [(t, label) for t, label in zip(texts, labels) if len(t.split()) >= 7][:n]
    assert len(kept) == n
    return [t for t, _ in kept], [label for _, label in kept]


# XLA compiles every step shape anew: one width (16 tokens, see one_width_texts) and example counts
# that the batch sizes divide (16 in training and validation, 32 in prediction) make one shape per
# step kind; three epochs reach accuracy 1.0 on both precision branches (two did on the edge)
@pytest.mark.parametrize("settings", [{"precision": "mixed_bfloat16"}, {"xla": True, "epochs": 3, "max_length": 16}],
                         ids=["bfloat16", "xla"])
def test_precision_and_xla_flags_train_and_leave_the_global_policy_alone(tiny_bert, tmp_path, settings):
    import tf_keras as keras

    X, y = one_width_texts(400, 0)
    Xv, yv = one_width_texts(96, 1)
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", **{**FAST, **settings})
    clf.fit(X, y, valid=Xv, valid_labels=yv, run_dir=tmp_path / "run", verbose=0)
    assert clf.evaluate(Xv, yv)["accuracy"] > 0.9
    assert keras.mixed_precision.global_policy().name == "float32"  # set only while the model was built
    backbone_dense = {layer.compute_dtype for layer in clf.model.submodules
                      if isinstance(layer, keras.layers.Dense) and layer.name != "logits"}
    assert backbone_dense == {"bfloat16" if settings.get("precision") else "float32"}
    assert clf.model.get_layer("logits").compute_dtype == "float32"  # the loss sees float32 logits
    assert clf.model._jit_compile is bool(settings.get("xla"))
    # the run folder records the setting, and the loaded model predicts the same
    again = TextClassifier.load(tmp_path / "run")
    assert again.config.precision == clf.config.precision and again.config.xla == clf.config.xla
    np.testing.assert_allclose(again.predict_proba(Xv), clf.predict_proba(Xv), atol=2e-2 if "precision" in settings else 1e-5)


@pytest.mark.precision
def test_predictions_do_not_depend_on_how_much_a_batch_is_padded(tiny_run):
    """Prediction pads each batch to exactly its longest text; the masked positions change nothing:
    alone (no padding), in batches of 4 and all in one batch (padded to the longest of all)."""
    clf = TextClassifier.load(tiny_run / "run")
    X = pd.read_csv(tiny_run / "valid.csv")["text"].tolist()[:24] + ["sport " * 25]
    alone = clf.predict_proba(X, batch_size=1)
    np.testing.assert_allclose(clf.predict_proba(X, batch_size=4), alone, atol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(X, batch_size=len(X)), alone, atol=1e-5)
