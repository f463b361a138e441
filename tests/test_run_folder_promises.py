"""One run per folder: a rerun never mixes two runs, a resume knows its data, caches and temporary
folders go with what they serve (docs/RELIABILITY.md, "What a run folder promises")."""
import gc
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import weakref

import numpy as np
import pytest

from conftest import signal_texts
from tfclf import TextClassifier
from tfclf.cli import main
from tfclf.errors import TfclfError
from tfclf.storage import run_folder
from tfclf.storage.run_folder import read_history, staging

FAST = dict(epochs=2, learning_rate=3e-3, batch_size=16, max_length=24)


def tfclf_command(*args) -> list[str]:
    return [sys.executable, "-m", "tfclf", *map(str, args)]


def kill_when(process: subprocess.Popen, line_starts: str) -> None:
    """SIGKILL `process` once its stdout has a line starting with `line_starts`."""
    for line in process.stdout:
        if line.startswith(line_starts):
            break
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_a_rerun_never_mixes_two_runs(tiny_run, tiny_bert, tmp_path, capsys):
    """Case 1. A finished run, evaluated; the same command with --pooling mean killed in epoch 1 had
    deleted its evaluations, switched config.json to mean pooling and answered with the old weights
    under it. Now the rerun is refused without --overwrite, and with it the old run stays whole
    (its evaluation, its settings, its answers) until the new one finishes."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "run", run)
    assert main(["evaluate", "--run", str(run), "--data", str(tiny_run / "valid.csv")]) == 0
    before = TextClassifier.load(run).predict_proba(signal_texts(30, 5, ("sport", "politics", "tech"))[0])
    recorded = json.loads((run / "metrics.json").read_text())
    argv = list(map(str, ["train", "--train", tiny_run / "train.csv", "--valid", tiny_run / "valid.csv", "--task",
                          "multiclass", "--model", tiny_bert, "--epochs", 3, "--lr", "3e-3", "--max-length", 32,
                          "--pooling", "mean", "--out", run]))
    capsys.readouterr()
    # refused before TensorFlow is needed: in this process (the kill below needs a process of its own)
    assert main(argv) == 2
    refused = capsys.readouterr().err
    assert "holds a finished run" in refused and "--overwrite" in refused
    process = subprocess.Popen(tfclf_command(*argv, "--overwrite"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    kill_when(process, "Epoch 1/")
    assert json.loads((run / "metrics.json").read_text()) == recorded  # the evaluation is still there
    assert json.loads((run / "config.json").read_text())["pooling"] == "cls"
    np.testing.assert_allclose(TextClassifier.load(run).predict_proba(
        signal_texts(30, 5, ("sport", "politics", "tech"))[0]), before, atol=1e-6)


def interrupt_after_epoch(monkeypatch, epoch: int):
    """An in-process stand-in for a kill: KeyboardInterrupt once `epoch` is saved (its backup written)."""
    import tf_keras as keras

    from tfclf.training import callbacks

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, done, logs=None):
            if done + 1 == epoch:
                raise KeyboardInterrupt

    made = callbacks.callbacks
    monkeypatch.setattr(callbacks, "callbacks", lambda *a, **k: made(*a, **k) + [Interrupt()])


def test_a_resume_must_be_on_the_data_it_started_with(tiny_bert, tmp_path, monkeypatch, capsys):
    """Case 2. A run stopped in epoch 2, then the same command on another training file whose labels
    were renamed (pos/neg -> yes/no): tfclf resumed, and the head trained on pos/neg answered yes/no."""
    X, y = signal_texts(200, 0)
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", **FAST)
    interrupt_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y, run_dir=tmp_path / "run", verbose=0)
    monkeypatch.undo()
    renamed = ["yes" if label == "pos" else "no" for label in y]
    with pytest.raises(TfclfError, match=r"unfinished training with the labels neg, pos \(now no, yes\).*--overwrite"):
        clf.fit(X, renamed, run_dir=tmp_path / "run", verbose=0)
    other = X[:150] + signal_texts(50, 9)[0]
    with pytest.raises(TfclfError, match="unfinished training with other training or validation data"):
        clf.fit(other, y, run_dir=tmp_path / "run", verbose=0)
    capsys.readouterr()
    clf.fit(X, y, run_dir=tmp_path / "run", verbose=0)  # the same data: resumed, epoch 2 only
    assert "resuming the unfinished run" in capsys.readouterr().err
    assert [r["epoch"] for r in read_history(tmp_path / "run" / "history.csv")] == [1, 2]
    assert not staging(tmp_path / "run").exists() and run_folder.run_id(tmp_path / "run") is not None


def test_predictions_keep_texts_without_fixed_width_strings(tmp_path):
    """Case 4. Texts were saved as a fixed-width str array: n x the longest text x 4 bytes (40 GB for
    10,000 texts with one 1 MB document), after training and before the run was saved."""
    texts = ["short"] * 199 + ["x" * 200_000]
    run_folder.record(tmp_path, "data.csv", {}, np.zeros((200, 1)), np.zeros((200, 1)), dict(enumerate(texts)))
    with np.load(tmp_path / "predictions" / "data.csv.npz") as data:
        assert all(data[k].dtype.kind != "U" for k in data.files)
        assert sum(data[k].nbytes for k in data.files) < 2 * sum(len(t) for t in texts)
        assert [run_folder.kept_text(data, i) for i in (0, 199)] == ["short", "x" * 200_000]


def test_a_fit_without_a_run_folder_leaves_no_temporary_folder(tiny_bert, tmp_path, monkeypatch):
    """Case 5c. fit without run_dir left its tfclf-* folder (weights, Adam slots) when it raised."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    X, y = signal_texts(60, 0)
    interrupt_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        TextClassifier.from_pretrained(str(tiny_bert), task="binary", **FAST).fit(X, y, verbose=0)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("tfclf-")]


def test_a_refit_frees_the_model_it_replaces(tiny_bert):
    """Case 5a. The predictor kept every model it had run: each re-fit in a notebook kept the old
    backbone alive."""
    X, y = signal_texts(60, 0)
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", **{**FAST, "epochs": 1})
    clf.fit(X, y, verbose=0)
    clf.predict_proba(X[:5])
    old = weakref.ref(clf.model)
    clf.fit(X, y, verbose=0)
    clf.predict_proba(X[:5])
    gc.collect()
    assert old() is None


def test_a_kill_after_stage_1_resumes_after_stage_1(tiny_bert, tmp_path, monkeypatch, capsys):
    """Case 6 (and 5b). A kill during stage 2, validation or the save resumed stage 1 at its next
    epoch with early stopping's wait reset (up to `patience` epochs wasted). Now the resume starts
    after the last stage done. After a fit the chunk-feature cache is empty."""
    from tfclf import readers
    from tfclf.training import fit

    rng = np.random.default_rng(0)
    X = [" ".join(rng.choice(["the", "movie", "was", "plot", "day"], 30)) + " " + cue for cue in ["good", "bad"] * 30]
    y = ["pos", "neg"] * 30
    # stage 2 pools by the mean: what is resumed is stage 1, whatever stage 2 is (an LSTM's traces cost ~3 s)
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", long_doc="hierarchical", max_chunks=3,
                                         doc_epochs=2, doc_pooling="mean", **{**FAST, "max_length": 16})
    stage1 = []

    def killed(reader, model, *args, **kwargs):  # stage 2 starts: stage 1's weights are final
        stage1.extend(model.get_weights())
        raise KeyboardInterrupt

    monkeypatch.setattr(readers.Hierarchical, "fit", killed)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y, run_dir=tmp_path / "run", verbose=0)
    monkeypatch.undo()
    assert clf.run_ is None  # a fit that failed leaves no half-trained classifier
    calls = []
    real = fit.train_sequences
    monkeypatch.setattr(fit, "train_sequences", lambda *a, **k: calls.append(1) or real(*a, **k))
    capsys.readouterr()
    clf.fit(X, y, run_dir=tmp_path / "run", verbose=0)
    assert calls == [] and "(stage 1 done)" in capsys.readouterr().err
    for kept, trained in zip(clf.model.get_weights(), stage1):
        np.testing.assert_array_equal(kept, trained)
    assert clf.reader._features is None  # the fit's chunk features went with it
    again = TextClassifier.load(tmp_path / "run")
    np.testing.assert_allclose(again.predict_proba(X[:10]), clf.predict_proba(X[:10]), atol=1e-6)
