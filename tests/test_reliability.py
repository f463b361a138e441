"""Surviving crashes and load: resume after SIGKILL, atomic writes, tf.distribute, 8 threads at once."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import signal_texts, skipping_keras_3
from tfclf.storage.atomic import atomic_write_text
from tfclf.storage.run_folder import read_history, staging


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left


def _train_command(folder: Path, checkpoint: Path, out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "tfclf", "train", "--train", str(folder / "train.csv"), "--valid",
            str(folder / "valid.csv"), "--task", "multiclass", "--model", str(checkpoint), "--epochs", str(epochs),
            "--lr", "2e-3", "--max-length", "32", "--batch-size", "16", "--patience", "10", "--out", str(out)]


def test_sigkilled_training_resumes_from_the_last_finished_epoch(tiny_run, tiny_bert, tmp_path, capsys):
    out = tmp_path / "run"
    command = _train_command(tiny_run, tiny_bert, out, epochs=4)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, training = time.time() + 240, staging(out)  # where the run trains until it finishes
    while len(read_history(training / "history.csv")) < 1 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = len(read_history(training / "history.csv"))
    assert 1 <= killed_after < 4, "the kill should land mid-training"
    assert (training / "backup").is_dir() and not out.exists()

    # the kill needs a process of its own; the resume reads only what the killed one left on disk, so it
    # runs as main() in this process (the command as a process: test_console; no second TensorFlow start)
    from tfclf.cli import main

    assert command[1:4] == ["-m", "tfclf", "train"]
    capsys.readouterr()
    status = main(command[3:])
    resumed = capsys.readouterr()
    assert status == 0, resumed.err[-2000:]
    assert "resuming the unfinished run" in resumed.err
    epochs = [row["epoch"] for row in read_history(out / "history.csv")]
    assert epochs == [1, 2, 3, 4]
    assert f"Epoch {killed_after + 1}/4" in resumed.out and "Epoch 1/4" not in resumed.out
    assert not (out / "backup").exists() and (out / "weights" / "model.index").exists() and not training.exists()
    # as good as the uninterrupted run of the tiny_run fixture on the same data (a third
    # training run of these settings would add half a minute to make test for the same check)
    accuracy = [json.loads((d / "metrics.json").read_text())["valid"]["accuracy"] for d in (out, tiny_run / "run")]
    assert accuracy[0] > 0.9 and accuracy[0] >= accuracy[1] - 0.05, accuracy


def test_resume_refuses_other_settings(tiny_run, tiny_bert, tmp_path, capsys):
    out = tmp_path / "run"
    (staging(out) / "backup").mkdir(parents=True)
    first = _train_command(tiny_run, tiny_bert, out, epochs=2)
    from tfclf.cli import main
    from tfclf.config import RunConfig
    from tfclf.storage.run_folder import write_config

    write_config(staging(out) / "config.json", RunConfig(model=str(tiny_bert), task="multiclass", epochs=9,
                                                        learning_rate=2e-3, max_length=32, batch_size=16, patience=10))
    # in this process (the SIGKILL test above runs the command as a process): an exception that is
    # not the one-line refusal would propagate out of main() and fail the test, as a traceback would
    capsys.readouterr()
    assert first[1:4] == ["-m", "tfclf", "train"]
    status = main(first[3:])
    stderr = capsys.readouterr().err
    assert status == 2 and "has an unfinished training with --epochs 9 (now 2)" in stderr
    assert "--overwrite" in stderr and "Traceback" not in stderr


MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[2])
    from conftest import signal_texts
    from tfclf import TextClassifier
    from tfclf.runtime.distribute import make_strategy
    X, y = signal_texts(640, 0)
    losses = {}
    for strategy in ("default", "mirrored"):
        clf = TextClassifier.from_pretrained(sys.argv[1], task="binary", epochs=4, learning_rate=3e-3,
                                             batch_size=32, max_length=32, seed=1, strategy=strategy)
        clf.fit(X, y, verbose=0)
        losses[strategy] = clf.history["loss"]
    print(json.dumps({"replicas": make_strategy("mirrored").num_replicas_in_sync, "losses": losses}))
""")


def test_mirrored_strategy_on_two_cpu_devices_reaches_the_single_device_loss(tiny_bert):
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(tiny_bert), str(Path(__file__).parent)],
                            capture_output=True, text=True, timeout=600, env=skipping_keras_3())
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["replicas"] == 2, found
    single, mirrored = found["losses"]["default"], found["losses"]["mirrored"]
    assert mirrored[-1] < mirrored[0] * 0.8, found  # it trains
    assert abs(mirrored[-1] - single[-1]) < 0.1 + 0.25 * single[-1], found


def test_predictions_from_eight_threads_equal_sequential(tiny_run, exported):
    from tfclf import TextClassifier
    from tfclf.serving.export import load_saved_model, predict_saved_model

    clf = TextClassifier.load(tiny_run / "run")  # in the run's own precision (auto)
    loaded = load_saved_model(exported[1])  # tiny_run's float32 SavedModel, as export(clf) writes it
    chunks = [signal_texts(40, seed, classes=("sport", "politics", "tech"))[0] for seed in range(16)]
    sequential = [clf.predict_proba(c) for c in chunks]
    served = [predict_saved_model(loaded, c)["probabilities"] for c in chunks]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(clf.predict_proba, chunks))
        threaded_served = list(pool.map(lambda c: predict_saved_model(loaded, c)["probabilities"], chunks))
    for a, b in zip(sequential, threaded):
        np.testing.assert_allclose(a, b, atol=1e-6)
    for a, b in zip(served, threaded_served):
        np.testing.assert_allclose(a, b, atol=1e-6)
