"""The family contract: every encoder family tfclf reads passes the same tests.

Against Hugging Face's PyTorch models of tiny random configs (tests/fixtures/families/make.py,
run offline with transformers 5 and torch): every layer's hidden states and the masked-LM logits,
for one text and for a pair, within 1e-5; transformers reading the folders tfclf writes (a
pre-trained checkpoint, a run exported for Hugging Face). Then tfclf's own promises on each:
a run saved and loaded, its SavedModel from raw strings, further masked-LM pre-training."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tfclf import TextClassifier
from tfclf.models import backbones

FIXTURES = Path(__file__).parent / "fixtures" / "families"
FAMILIES = ("bert", "distilbert", "mpnet", "roberta", "electra")


def expected(family: str):
    return np.load(FIXTURES / f"{family}.npz")


@pytest.mark.parametrize("kind", ["single", "pair"])
@pytest.mark.parametrize("family", FAMILIES)
def test_outputs_equal_hugging_faces(family, kind):
    ref = expected(family)
    folder = FIXTURES / family
    config = backbones.backbone_config(folder)
    assert config.family.model_type == family
    inputs = {"input_ids": ref[f"{kind}_ids"].astype(np.int32), "attention_mask": ref[f"{kind}_mask"].astype(np.int32)}
    if kind == "pair" and config.type_vocab_size:
        inputs["token_type_ids"] = ref["pair_types"].astype(np.int32)
    real = inputs["attention_mask"].astype(bool)
    found = backbones.build_backbone(config, folder)(**inputs, output_hidden_states=True)["hidden_states"]
    assert len(found) == config.num_layers + 1
    for i, hidden in enumerate(found):
        np.testing.assert_allclose(hidden.numpy()[real], ref[f"{kind}_hidden_{i}"][real], atol=1e-5, err_msg=f"layer {i}")
    if kind == "single":  # the masked-LM head reads one text
        lm, had_head = backbones.masked_language_model(config, folder)
        assert had_head
        logits = lm({"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]})
        np.testing.assert_allclose(logits.numpy()[real], ref["single_mlm_logits"][real], atol=1e-5)


def test_mpnet_relative_position_buckets_are_transformers():
    from tfclf.models.families.mpnet.encoder import bucket_table

    ref = expected("mpnet")
    table = bucket_table(601, 32)  # relative positions -600 .. 600
    assert int(ref["buckets_from"]) == -600
    np.testing.assert_array_equal(table, ref["buckets"])


def test_transformers_read_tfclfs_folders_of_every_family():
    checks = json.loads((FIXTURES / "checks.json").read_text())
    found = checks["largest difference"]
    for family in FAMILIES:
        assert sum(name.startswith(f"{family}:") for name in found) == 3, family  # pre-trained, two exports
    assert max(found.values()) <= 1e-5, found


def _texts(n: int, seed: int):
    rng = np.random.default_rng(seed)
    texts = [" ".join(f"w{i}" for i in rng.integers(0, 59, rng.integers(3, 10))) for _ in range(n)]
    return texts, ["yes" if "w5 " in t + " " else "no" for t in texts]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_run_saves_loads_and_serves_from_raw_strings(family, tmp_path):
    from tfclf.serving.export import load_saved_model, predict_saved_model

    X, y = _texts(120, 0)
    clf = TextClassifier.from_pretrained(str(FIXTURES / family), task="binary", epochs=1, max_length=16,
                                         batch_size=16, learning_rate=3e-3, precision="float32")
    clf.fit(X, y, run_dir=tmp_path / "run", verbose=0)
    probs = clf.predict_proba(X[:30])
    again = TextClassifier.load(tmp_path / "run")
    assert again.config.model == str(FIXTURES / family) and again.backbone_config.model_type == family
    np.testing.assert_allclose(again.predict_proba(X[:30]), probs, atol=1e-6)
    served = predict_saved_model(load_saved_model(again.export(tmp_path / "saved")), X[:30])
    np.testing.assert_allclose(served["probabilities"], probs, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_masked_lm_pretraining_lowers_the_loss(family, tmp_path):
    from tfclf.training.pretraining import pretrain

    X, _ = _texts(160, 1)
    # ELECTRA's tiny generator ties its head to 8-wide embeddings: its loss turns down after 3 epochs
    out = pretrain(X, str(FIXTURES / family), tmp_path / "lm", max_length=16, epochs=6 if family == "electra" else 3,
                   batch_size=16, learning_rate=3e-3, precision="float32", verbose=0)
    losses = [float(v) for v in (out / "pretraining_loss.txt").read_text().split()]
    assert losses[-1] < losses[0], losses
    assert backbones.backbone_config(out).model_type == family
