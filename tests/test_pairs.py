"""Sentence pairs end to end: a label only the second text carries is learnt; the CLI (--pair-column,
--pair), the Python API ((text, pair) tuples, pairs=, a DataFrame's pair column) and the SavedModel
(text, text_pair) give the same probabilities; files stream; explanations cover both texts; a run
reads pairs or single texts, and says so in one line when given the other."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import BF16_ATOL, signal_texts
from tfclf import TextClassifier, TfclfError
from tfclf.cli import main

CLASSES = ("sport", "politics", "tech")


def pair_frame(n: int, seed: int) -> pd.DataFrame:
    """A first text of filler and cue words of any class, and a second whose cue word is the label."""
    first, _ = signal_texts(n, seed + 100, CLASSES)
    second, labels = signal_texts(n, seed, CLASSES)
    return pd.DataFrame({"premise": first, "hypothesis": second, "labels": labels})


@pytest.fixture(scope="module")
def pair_run(tiny_bert, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    for name, n, seed in (("train", 600, 0), ("valid", 150, 1), ("test", 120, 2)):
        pair_frame(n, seed).to_csv(folder / f"{name}.csv", index=False)
    assert main(["train", "--train", str(folder / "train.csv"), "--valid", str(folder / "valid.csv"), "--task",
                 "multiclass", "--model", str(tiny_bert), "--text-column", "premise", "--pair-column", "hypothesis",
                 "--epochs", "8", "--lr", "3e-3", "--max-length", "48", "--batch-size", "16", "--precision", "float32",
                 "--out", str(folder / "run")]) == 0
    return folder


def test_the_second_text_is_read_and_every_way_in_gives_the_same_probabilities(pair_run, tmp_path, capsys):
    from tfclf.serving.export import load_saved_model, predict_saved_model

    clf = TextClassifier.load(pair_run / "run")
    assert clf.config.pairs and clf.config.pair_column == "hypothesis" and "token_type_ids" in clf.model.input_names
    test = pd.read_csv(pair_run / "test.csv")
    first, second = test["premise"].tolist(), test["hypothesis"].tolist()
    assert clf.evaluate(pair_run / "test.csv")["accuracy"] > 0.9  # the label is in the second text only
    by_tuples = clf.predict_proba(list(zip(first, second)))
    np.testing.assert_allclose(clf.predict_proba(first, pairs=second), by_tuples, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(list(zip(first, second))[::-1])[::-1], by_tuples, atol=1e-5)
    capsys.readouterr()
    argv = ["predict", "--run", str(pair_run / "run")]
    for a, b in zip(first[:5], second[:5]):
        argv += ["--text", a, "--pair", b]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["pair"] for r in rows] == second[:5]
    np.testing.assert_allclose([[r["probabilities"][c] for c in clf.classes_] for r in rows], by_tuples[:5],
                               atol=1e-6)
    on_openvino = TextClassifier.load(pair_run / "run", precision=clf.prediction_precision, engine="openvino")
    np.testing.assert_allclose(on_openvino.predict_proba(first, pairs=second), by_tuples, atol=1e-5 if
                               clf.prediction_precision == "float32" else BF16_ATOL)  # token types go in too
    loaded = load_saved_model(clf.export(tmp_path / "saved"))
    assert set(loaded.signatures["serving_default"].structured_input_signature[1]) == {"text", "text_pair"}
    served = predict_saved_model(loaded, list(zip(first, second)))
    np.testing.assert_allclose(served["probabilities"], by_tuples, atol=1e-5)
    assert [v.decode() for v in served["label"]] == clf.predict(list(zip(first, second)))
    # a file, streamed with its pair column, and its rows' other columns carried
    assert main(["predict", "--run", str(pair_run / "run"), "--data", str(pair_run / "test.csv"), "--out",
                 str(tmp_path / "out.jsonl")]) == 0
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [w["hypothesis"] for w in written] == second
    np.testing.assert_allclose([[w["probabilities"][c] for c in clf.classes_] for w in written], by_tuples, atol=1e-6)


def test_a_run_reads_what_it_was_trained_on_and_says_so(pair_run, tiny_run, tiny_bert, capsys):
    pairs, single = TextClassifier.load(pair_run / "run"), TextClassifier.load(tiny_run / "run")
    with pytest.raises(TfclfError, match="this run reads sentence pairs"):
        pairs.predict(["the team won"])
    with pytest.raises(TfclfError, match="trained on single texts"):
        single.predict([("the team won", "a vote")])
    with pytest.raises(TfclfError, match="2 texts but 1 pairs"):
        pairs.predict(["a", "b"], pairs=["c"])
    assert main(["predict", "--run", str(pair_run / "run"), "--text", "a", "--text", "b", "--pair", "c"]) == 2
    assert "2 --text but 1 --pair" in capsys.readouterr().err
    with pytest.raises(TfclfError, match="hierarchical"):
        TextClassifier.from_pretrained(str(tiny_bert), task="binary", long_doc="hierarchical").fit(
            [("a b", "c d")] * 20, ["x", "y"] * 10)
    frame = pair_frame(30, 3)
    with pytest.raises(TfclfError, match="a text of the pair is empty"):
        TextClassifier.from_pretrained(str(tiny_bert), task="multiclass").fit(
            [("a b", "")] + list(zip(frame.premise, frame.hypothesis))[1:], frame.labels.tolist())


def test_explanations_cover_both_texts(pair_run):
    from tfclf.evaluation.attributions import PAIR_WORD

    clf = TextClassifier.load(pair_run / "run")
    first, second = "the movie was", "the team game"
    (found,) = clf.explain([(first, second)], steps=64)  # a confident tiny model: a finer path (up to 256)
    (attribution,) = found["attributions"]
    assert attribution.words == first.split() + [PAIR_WORD] + second.split()
    assert attribution.completeness_gap <= 0.05
    assert attribution.words[int(np.argmax(attribution.word_scores))] in ("team", "game")
    assert found["predicted"] == "sport"


@pytest.mark.parametrize("family", ["distilbert", "mpnet"])
def test_pairs_on_families_without_token_types(family, tmp_path):
    """DistilBERT and MPNet take no token types: a pair is packed (MPNet: <s> a </s></s> b </s>) and
    the model is given ids and mask only."""
    from pathlib import Path

    folder = Path(__file__).parent / "fixtures" / "families" / family
    rng = np.random.default_rng(0)
    a = [" ".join(f"w{i}" for i in rng.integers(0, 59, 5)) for _ in range(80)]
    b = [" ".join(f"w{i}" for i in rng.integers(0, 59, 5)) for _ in range(80)]
    labels = ["x" if "w3" in t.split() else "y" for t in b]
    clf = TextClassifier.from_pretrained(str(folder), task="binary", epochs=1, max_length=16, batch_size=16,
                                         precision="float32").fit(a, labels, pairs=b, verbose=0, run_dir=tmp_path / "r")
    assert clf.config.pairs and "token_type_ids" not in clf.model.input_names
    ids = clf.tokenizer(np.array([a[0]]), np.array([b[0]]))["input_ids"].numpy()[0]
    spec = clf.tokenizer.spec
    seps = [i for i, t in enumerate(ids) if t == spec.token_id(spec.sep_token)]
    assert len(seps) == (3 if family == "mpnet" else 2) and ids[0] == spec.token_id(spec.cls_token)
    np.testing.assert_allclose(TextClassifier.load(tmp_path / "r").predict_proba(a[:10], pairs=b[:10]),
                               clf.predict_proba(list(zip(a[:10], b[:10]))), atol=1e-6)


def test_a_parquet_file_of_pairs_predicts_in_shards_that_merge_back(pair_run, tmp_path):
    """--shard K/N and Parquet input with pairs: each shard reads both columns, and the merged file
    is the unsharded one."""
    test = pd.read_csv(pair_run / "test.csv").assign(id=lambda f: range(len(f)))
    test.to_parquet(tmp_path / "test.parquet")
    run = str(pair_run / "run")
    assert main(["predict", "--run", run, "--data", str(tmp_path / "test.parquet"), "--out", str(tmp_path / "all.csv")]) == 0
    for k in (0, 1):  # 0-based, as a Kubernetes indexed job's JOB_COMPLETION_INDEX
        assert main(["predict", "--run", run, "--data", str(tmp_path / "test.parquet"), "--shard", f"{k}/2",
                     "--out", str(tmp_path / f"part{k}.csv")]) == 0
    assert main(["merge-predictions", "--out", str(tmp_path / "merged.csv"), str(tmp_path / "part0.csv"),
                 str(tmp_path / "part1.csv")]) == 0
    whole, merged = pd.read_csv(tmp_path / "all.csv"), pd.read_csv(tmp_path / "merged.csv")
    assert merged["id"].tolist() == list(range(len(test))) and merged["hypothesis"].tolist() == test["hypothesis"].tolist()
    pd.testing.assert_frame_equal(merged, whole, atol=1e-6)
    assert (whole["prediction"] == TextClassifier.load(run).predict(list(zip(test["premise"], test["hypothesis"])))).all()
