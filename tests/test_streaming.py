"""Predicting and evaluating files of any size: a block at a time, written as it goes, resumable,
split into shards that merge back; the Python API streams any iterable."""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import signal_texts
from tfclf import TextClassifier
from tfclf.cli import main
from tfclf.data import predictions, tables
from tfclf.errors import TfclfError
from tfclf.storage import run_folder

CLASSES = ("sport", "politics", "tech")


@pytest.fixture(scope="module")
def clf(tiny_run):
    return TextClassifier.load(tiny_run / "run")


def write_input(path, n: int, seed: int = 3):
    texts, labels = signal_texts(n, seed, CLASSES)
    frame = pd.DataFrame({"id": [f"doc-{i}" for i in range(n)], "text": texts, "labels": labels,
                          "prediction": ["an input column"] * n})
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    elif path.suffix == ".parquet":
        frame.to_parquet(path, row_group_size=70)
    else:
        frame.to_csv(path, index=False)
    return frame


def read_output(path) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        return pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    return pd.read_csv(path, dtype=str, keep_default_na=False, sep="\t" if path.suffix == ".tsv" else ",")


def test_the_first_block_is_written_before_the_input_is_read_whole(clf, tmp_path, monkeypatch):
    write_input(tmp_path / "in.csv", 300)
    handed, at_first_write = [0], []
    records = tables.TableReader._records

    def counting(self):
        for item in records(self):
            handed[0] += 1
            yield item

    write = predictions.PredictionWriter.write

    def noting(self, *args):
        at_first_write.append(handed[0])
        return write(self, *args)

    monkeypatch.setattr(tables.TableReader, "_records", counting)
    monkeypatch.setattr(predictions.PredictionWriter, "write", noting)
    assert clf.predict_file(tmp_path / "in.csv", tmp_path / "out.csv", block_rows=50) == 300
    assert handed[0] == 300 and at_first_write[0] == 50 and len(at_first_write) == 6


@pytest.mark.parametrize("suffix,out", [(".csv", ".csv"), (".jsonl", ".jsonl"), (".parquet", ".tsv")])
def test_output_carries_the_input_columns(clf, tmp_path, suffix, out):
    frame = write_input(tmp_path / f"in{suffix}", 150)
    clf.predict_file(tmp_path / f"in{suffix}", tmp_path / f"out{out}", block_rows=64)
    found = read_output(tmp_path / f"out{out}")
    assert list(found["id"]) == list(frame["id"]) and list(found["text"]) == list(frame["text"])
    # the input's own "prediction" column: renamed where the output uses that name (CSV and TSV)
    assert set(found["prediction" if out == ".jsonl" else "input_prediction"]) == {"an input column"}
    expected = clf.predict_proba(frame["text"].tolist())
    if out == ".jsonl":
        assert list(found["label"]) == clf.decide(expected)
        np.testing.assert_allclose([[p[c] for c in clf.labels.classes] for p in found["probabilities"]], expected,
                                   atol=1e-6)
    else:
        assert list(found["prediction"]) == clf.decide(expected)
        np.testing.assert_allclose(found[[f"p_{c}" for c in clf.labels.classes]].astype(float), expected, atol=1e-6)


@pytest.mark.parametrize("killed_after,torn", [(1, False), (3, True), (5, True)])
def test_a_prediction_killed_midway_and_resumed_gives_the_same_file(clf, tmp_path, monkeypatch, killed_after, torn):
    """Killed after a block was recorded (and, `torn`, while the next was half-written): the rerun
    with resume continues after the last recorded block, to the file one run writes."""
    write_input(tmp_path / "in.csv", 400)
    clf.predict_file(tmp_path / "in.csv", tmp_path / "whole.csv", block_rows=60)
    commit = __import__("tfclf.serving.streaming", fromlist=["_commit"])._commit
    done = [0]

    def dying(file, state, record):
        commit(file, state, record)
        done[0] += 1
        if done[0] == killed_after:
            if torn:
                file.write("half a row,of the next blo")
                file.flush()
            raise KeyboardInterrupt

    monkeypatch.setattr("tfclf.serving.streaming._commit", dying)
    with pytest.raises(KeyboardInterrupt):
        clf.predict_file(tmp_path / "in.csv", tmp_path / "out.csv", block_rows=60)
    monkeypatch.undo()
    assert not (tmp_path / "out.csv").exists() and (tmp_path / ".out.csv.partial").exists()
    clf.predict_file(tmp_path / "in.csv", tmp_path / "out.csv", block_rows=60, resume=True)
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv", "whole.csv"]


def test_a_resume_on_another_input_is_refused(clf, tmp_path, monkeypatch):
    write_input(tmp_path / "in.csv", 200)
    commit = __import__("tfclf.serving.streaming", fromlist=["_commit"])._commit

    def dying(*args):
        commit(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr("tfclf.serving.streaming._commit", dying)
    with pytest.raises(KeyboardInterrupt):
        clf.predict_file(tmp_path / "in.csv", tmp_path / "out.csv", block_rows=60)
    monkeypatch.undo()
    write_input(tmp_path / "in.csv", 250)
    with pytest.raises(TfclfError, match="another prediction's .*input"):
        clf.predict_file(tmp_path / "in.csv", tmp_path / "out.csv", block_rows=60, resume=True)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_shards_merged_give_one_runs_predictions(clf, tmp_path, capsys, suffix):
    write_input(tmp_path / "in.csv", 230)
    clf.predict_file(tmp_path / "in.csv", tmp_path / f"whole{suffix}", block_rows=64)
    parts = [tmp_path / f"part{k}{suffix}" for k in range(3)]
    for k, part in enumerate(parts):
        clf.predict_file(tmp_path / "in.csv", part, shard=f"{k}/3", block_rows=40)
    assert main(["merge-predictions", "--out", str(tmp_path / f"merged{suffix}"), *map(str, parts[::-1])]) == 0
    merged, whole = read_output(tmp_path / f"merged{suffix}"), read_output(tmp_path / f"whole{suffix}")
    assert list(merged.columns) == list(whole.columns) and len(merged) == 230
    probability = [c for c in whole.columns if c.startswith("p_") or c == "probabilities"]
    pd.testing.assert_frame_equal(merged.drop(columns=probability), whole.drop(columns=probability))
    if suffix == ".csv":  # batches of other widths: the same numbers, to float rounding
        np.testing.assert_allclose(merged[probability].astype(float), whole[probability].astype(float), atol=1e-6)
    assert main(["merge-predictions", "--out", str(tmp_path / f"m2{suffix}"), *map(str, parts[:2])]) == 2
    assert "input row 2 is missing" in capsys.readouterr().err


def test_predict_proba_streams_any_iterable(clf, monkeypatch):
    texts = signal_texts(300, 4, CLASSES)[0]
    expected = clf.predict_proba(texts)
    pulled, seen = [0], []
    monkeypatch.setattr("tfclf.data.inputs.BLOCK_ROWS", 100)

    def generator():
        for text in texts:
            pulled[0] += 1
            yield text

    probabilities = clf.run_.probabilities
    monkeypatch.setattr(clf.run_, "probabilities", lambda block, *a: seen.append(pulled[0]) or
                        probabilities(block, *a))
    np.testing.assert_allclose(clf.predict_proba(generator()), expected, atol=1e-6)
    assert seen == [100, 200, 300]  # a block predicted before the next is pulled
    assert clf.predict([]) == [] and clf.predict_proba(iter([])).shape == (0, 3)


def test_evaluate_streams_a_file_and_keeps_only_the_mistakes_texts(tiny_run, tmp_path, monkeypatch):
    frame = write_input(tmp_path / "test.csv", 240, seed=8)
    frame.loc[::7, "labels"] = "tech"  # some mistakes for the report to show
    frame.to_csv(tmp_path / "test.csv", index=False)
    clf = TextClassifier.load(tiny_run / "run")
    whole = clf.evaluate(frame["text"].tolist(), frame["labels"].tolist())
    monkeypatch.setattr("tfclf.data.blocks.BLOCK_ROWS", 50)
    run = tmp_path / "run"
    __import__("shutil").copytree(tiny_run / "run", run)
    clf = TextClassifier.load(run)
    streamed = clf.evaluate(str(tmp_path / "test.csv"), run_dir=run)
    assert {k: v for k, v in streamed.items() if k != "per_class"} == pytest.approx(
        {k: v for k, v in whole.items() if k != "per_class"})
    with np.load(run / "predictions" / (run_folder.safe_name(str(tmp_path / "test.csv")) + ".npz")) as data:
        assert data["probabilities"].shape == (240, 3) and 0 < len(data["text_rows"]) <= 12
        assert run_folder.kept_text(data, int(data["text_rows"][0])) == frame["text"][int(data["text_rows"][0])]
