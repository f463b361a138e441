"""The exported SavedModel: same probabilities as Python, TF Serving layout, signatures, CLI."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import signal_texts, skipping_keras_3
from tfclf import TextClassifier
from tfclf.cli import main
from tfclf.serving.export import export, load_saved_model, predict_saved_model


def hard_texts():
    texts, _ = signal_texts(50, 3, classes=("sport", "politics", "tech"))
    return texts + ["", "   ", "x" * 100_000, "game " * 25_000, "naïve café déjà vu", "日本語のテキスト",
                    "Ελληνικά και Русский", "emoji 😀🎉 team", "ctrl\x00\x07 vote\u200b"]


def test_saved_model_matches_python_within_1e5(exported):
    clf, path, _ = exported
    texts = hard_texts()
    assert len(texts) >= 59
    loaded = tf.saved_model.load(str(path))
    out = loaded.signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(out["probabilities"].numpy(), clf.predict_proba(texts), atol=1e-5)
    assert [v.decode() for v in out["label"].numpy()] == clf.predict(texts)


def test_layout_versions_warmup_and_no_leftovers(exported, tiny_run):
    clf, path, base = exported
    assert path == base / "1" and (path / "saved_model.pb").is_file()
    # the serving functions only: no trace of each Keras layer for Keras's loader (half the export time)
    assert b"call_and_return_conditional_losses" not in (path / "saved_model.pb").read_bytes()
    # each serving function traced and kept once (a concrete function traced outside
    # tf.saved_model.save is traced again inside it: a third of the export time, and twice the graph)
    from tensorflow.core.protobuf import saved_model_pb2

    graph = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes()).meta_graphs[0].graph_def
    traced = [re.sub(r"_\d+$", "", f.signature.name) for f in graph.library.function]
    assert traced.count("__inference__serve_text") == 1 and len(traced) == len(set(traced)), traced
    second = export(clf, base)
    assert second == base / "2"
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]  # no temporary folder left behind
    from tensorflow_serving.apis import prediction_log_pb2

    records = list(tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests")))
    assert len(records) >= 2
    log = prediction_log_pb2.PredictionLog.FromString(records[-1].numpy())
    assert log.predict_log.request.inputs["text"].dtype == tf.string.as_datatype_enum
    with pytest.raises(Exception, match="exists already"):
        export(clf, base, version=1)


def test_token_id_signature_agrees_with_text_signature(exported):
    clf, path, _ = exported
    loaded = load_saved_model(path)
    texts = ["the team game", "a vote on the law today"]
    ids = clf.tokenizer(tf.constant(texts))
    by_ids = loaded.signatures["serve_token_ids"](**ids)
    by_text = loaded.signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(by_ids["probabilities"].numpy(), by_text["probabilities"].numpy(), atol=1e-6)
    assert [c.decode() for c in loaded.class_names.numpy()] == clf.labels.classes


def test_multilabel_export_applies_thresholds(tiny_multilabel_run, tmp_path):
    from conftest import multilabel_texts

    X, _ = multilabel_texts(300, 0)
    clf = TextClassifier.load(tiny_multilabel_run)
    clf.thresholds = np.array([0.3, 0.7])
    out = predict_saved_model(load_saved_model(export(clf, tmp_path / "ml")), X[:40])
    expected = (clf.predict_proba(X[:40]) >= [0.3, 0.7]).astype(int)
    assert out["decisions"].tolist() == expected.tolist()
    assert [[n.decode() for n in row if n] for row in out["labels"]] == clf.predict(X[:40])


def test_predicting_from_a_saved_model_can_show_progress(exported, capsys):
    _, path, _ = exported
    loaded = load_saved_model(path)
    texts = ["the team game", "a vote on the law today", "a new phone"] * 7
    quiet = predict_saved_model(loaded, texts, batch_size=8)
    assert "predicting" not in capsys.readouterr().err
    shown = predict_saved_model(loaded, texts, batch_size=8, progress=True)
    bar = capsys.readouterr().err
    assert "predicting" in bar and "3/3" in bar  # 21 texts in batches of 8
    np.testing.assert_array_equal(quiet["probabilities"], shown["probabilities"])


# `saved_model_cli show` then `saved_model_cli run` in one process (one TensorFlow start-up, not two):
# the console script's own main() each time, show before tensorflow-text is imported (as a plain
# TensorFlow install has it), run after (it needs tensorflow-text's ops registered, as TF Serving has them)
SAVED_MODEL_CLI = """
import sys
from tensorflow.python.tools.saved_model_cli import main

def saved_model_cli(*args):
    sys.argv = ["saved_model_cli", *args]
    try:
        main()
    except SystemExit as exited:
        if exited.code:
            raise
    sys.stdout.flush()

path = sys.argv[1]
saved_model_cli("show", "--dir", path, "--all")
assert "tensorflow_text" not in sys.modules, "show ran with tensorflow-text imported"
print({mark!r}, flush=True)
import tensorflow_text
saved_model_cli("run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
                "--input_exprs", 'text=["the team won the game", "a vote on the law"]')
"""
SHOWN_THEN_RUN = "----- saved_model_cli run -----"


def test_saved_model_cli_show_and_run(exported):
    _, path, _ = exported
    result = subprocess.run([sys.executable, "-c", SAVED_MODEL_CLI.format(mark=SHOWN_THEN_RUN), str(path)],
                            capture_output=True, text=True, timeout=300, env=skipping_keras_3())
    assert result.returncode == 0, result.stderr[-2000:]
    shown, run = result.stdout.split(SHOWN_THEN_RUN + "\n")
    assert "inputs['text'] tensor_info:" in shown and "dtype: DT_STRING" in shown
    assert "outputs['probabilities']" in shown
    assert "probabilities" in run and "b'sport'" in run


def test_cli_export_and_predict_without_transformers(tiny_run, tmp_path):
    assert main(["export", "--run", str(tiny_run / "run"), "--out", str(tmp_path / "m")]) == 0
    code = ("import sys; from tfclf.cli import main; status = main(sys.argv[1:]); "
            "assert 'transformers' not in sys.modules, 'transformers was imported'; sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", code, "predict", "--saved-model", str(tmp_path / "m" / "1"),
                             "--text", "the team game", "--text", "vote on the law"],
                            capture_output=True, text=True, timeout=300, env={**os.environ})
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in rows] == ["sport", "politics"]
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-5


def test_broken_text_gets_one_answer_in_python_and_in_the_saved_model(exported):
    """A lone surrogate (a truncated tweet's half emoji) ended predict with a ValueError; bytes that
    are not UTF-8 reach the SavedModel from any client. Both become U+FFFD the same way."""
    clf, path, _ = exported
    texts = ["broken \ud83d game", "vote \udc00 now", "the team 😀", "law \ud83d\ude00 tech"]  # the last: a pair
    # a client's bytes: a lone surrogate encoded as if it were a character is not UTF-8; a pair is 😀
    raw = [t.encode("utf-8", "surrogatepass") for t in texts[:3]] + ["law 😀 tech".encode()] + \
        [b"game\xff\xfeday", b"caf\xe9 vote", b"\xe2\x80"]
    expected = clf.predict_proba(["broken \ufffd game", "vote \ufffd now", "the team 😀", "law 😀 tech",
                                  "game\ufffd\ufffdday", "caf\ufffd vote", "\ufffd"])
    np.testing.assert_allclose(clf.predict_proba(texts + raw[4:]), expected, atol=1e-6)
    served = load_saved_model(path).signatures["serving_default"](text=tf.constant(raw))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)


def test_a_saved_model_holds_the_weights_and_not_the_optimizers_state(tiny_bert, tmp_path):
    """A fitted classifier's export saved Adam's two slots a weight beside the weights: three times
    the size (benchmarks/large_vocab.py). The serving variables are the model's weights and the
    class names and task, nothing else; the training checkpoint keeps the optimizer."""
    texts, labels = signal_texts(32, 0)
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", epochs=1, max_length=16,
                                         valid_fraction=0.0, precision="float32").fit(texts, labels, verbose=0)
    saved = clf.export(tmp_path / "saved")
    names = [n for n, _ in tf.train.list_variables(str(saved / "variables" / "variables"))]
    assert not [n for n in names if "optimizer" in n], names
    weights = [n for n in names if n.startswith("token_model/")]
    assert len(weights) == len(clf.model.weights), (len(weights), len(clf.model.weights))
    np.testing.assert_allclose(predict_saved_model(load_saved_model(saved), texts)["probabilities"],
                               clf.predict_proba(texts), atol=1e-5)
