"""A checkpoint with its own classification head (a *ForSequenceClassification folder: NLI models,
cross-encoders) loads with that head and its labels (id2label, in its order) to predict, to save
as a run, to export back to Hugging Face, or to continue training. The oracle: transformers'
logits of tiny random classifiers of every family on fixed pairs, made offline
(tests/fixtures/families/make.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tfclf import TextClassifier, TfclfError
from tfclf.models import weights

from test_families import FIXTURES

FAMILIES = ("bert", "distilbert", "mpnet")


def _logits(clf: TextClassifier, expected) -> np.ndarray:
    inputs = {"input_ids": expected["pair_ids"].astype(np.int32), "attention_mask": expected["pair_mask"].astype(np.int32)}
    if "token_type_ids" in clf.model.input_names:
        inputs["token_type_ids"] = expected["pair_types"].astype(np.int32)
    return clf.model(inputs, training=False).numpy()


@pytest.mark.parametrize("family", FAMILIES)
def test_a_checkpoints_head_gives_transformers_logits_and_keeps_its_labels(family, tmp_path):
    folder, expected = FIXTURES / f"{family}-nli", np.load(FIXTURES / f"{family}-nli.npz")
    clf = TextClassifier.from_pretrained(str(folder), keep_head=True, pairs=True, precision="float32",
                                         max_length=32)
    assert clf.config.task == "multiclass" and clf.config.pairs
    assert list(clf.classes_) == ["neutral", "entailment", "contradiction"]  # id2label's order, not sorted
    np.testing.assert_allclose(_logits(clf, expected), expected["logits"], atol=1e-5)
    # saved as a run and loaded back: the same model
    loaded = TextClassifier.load(clf.save(tmp_path / "run"))
    np.testing.assert_allclose(_logits(loaded, expected), expected["logits"], atol=1e-5)
    # and exported back to Hugging Face: the same tensors under the same names
    out = loaded.export(tmp_path / "hf", format="huggingface")
    original, written = weights.read(folder / "model.safetensors"), weights.read(out / "model.safetensors")
    head = [k for k in original if k.startswith(("classifier", "pre_classifier", "pooler"))]
    assert head and all(np.allclose(original[k], written[k], atol=1e-6) for k in head)
    assert json.loads((out / "config.json").read_text())["id2label"] == \
        json.loads((folder / "config.json").read_text())["id2label"]


def test_a_head_continues_training_on_its_own_labels_and_refuses_others(tmp_path):
    clf = TextClassifier.from_pretrained(str(FIXTURES / "bert-nli"), keep_head=True, pairs=True, epochs=1,
                                         batch_size=4, max_length=16, precision="float32")
    before = clf.model.get_layer("logits").kernel.numpy().copy()
    pairs = [("w1 w2 w3", "w4 w5"), ("w6 w7", "w8"), ("w9 w10", "w11 w12")] * 4
    labels = ["contradiction", "neutral", "entailment"] * 4
    clf.fit(pairs, labels, warm_start=True, verbose=0)
    assert list(clf.classes_) == ["neutral", "entailment", "contradiction"]
    assert not np.allclose(clf.model.get_layer("logits").kernel.numpy(), before)
    with pytest.raises(TfclfError, match="needs the labels the model was trained on"):
        clf.fit(pairs[:3], ["neutral", "maybe", "entailment"], warm_start=True, verbose=0)


def test_keep_head_says_what_is_wrong_in_one_line(tiny_bert):
    with pytest.raises(TfclfError, match="has no classification head"):
        TextClassifier.from_pretrained(str(tiny_bert), keep_head=True)
    with pytest.raises(TfclfError, match="its head is multiclass.*task='binary'"):
        TextClassifier.from_pretrained(str(FIXTURES / "bert-nli"), task="binary", keep_head=True, max_length=32)


def test_the_cli_continues_a_checkpoints_head_on_pairs(tmp_path, capsys):
    import pandas as pd

    from tfclf.cli import main

    frame = pd.DataFrame({"text": ["w1 w2 w3", "w6 w7", "w9 w10"] * 4, "pair": ["w4 w5", "w8", "w11 w12"] * 4,
                          "labels": ["contradiction", "neutral", "entailment"] * 4})
    frame.to_csv(tmp_path / "train.csv", index=False)
    argv = ["train", "--train", str(tmp_path / "train.csv"), "--pair-column", "pair", "--model",
            str(FIXTURES / "bert-nli"), "--epochs", "1", "--max-length", "16", "--batch-size", "4", "--keep-head"]
    assert main([*argv, "--task", "multiclass", "--out", str(tmp_path / "run")]) == 0
    clf = TextClassifier.load(tmp_path / "run")
    assert list(clf.classes_) == ["neutral", "entailment", "contradiction"] and clf.config.head_layer == "tanh"
    assert clf.predict([("w1 w2", "w3")])[0] in clf.classes_
    frame[frame["labels"] != "contradiction"].to_csv(tmp_path / "train.csv", index=False)  # two classes: binary
    assert main([*argv, "--task", "binary", "--out", str(tmp_path / "run2")]) == 2
    assert "its head is multiclass" in capsys.readouterr().err
