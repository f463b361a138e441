"""MultiWorkerMirroredStrategy for real: two `tfclf train` processes, a chief and a worker,
talking over 127.0.0.1 with a TF_CONFIG each, as on two hosts sharing the run folder."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import signal_texts
from tfclf.storage.run_folder import read_history, staging

WAIT = 150  # seconds: every wait below is bounded, so a hang fails the test instead of stalling CI


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("multiworker-data")
    for name, n, seed in (("train", 320, 0), ("valid", 96, 1)):
        x, y = signal_texts(n, seed)
        pd.DataFrame({"text": x, "labels": y}).to_csv(folder / f"{name}.csv", index=False)
    return folder


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _command(texts: Path, checkpoint: Path, out: Path, epochs: int, patience: int, strategy: str,
             valid: bool = True) -> list[str]:
    return [sys.executable, "-m", "tfclf", "train", "--train", str(texts / "train.csv"),
            *(["--valid", str(texts / "valid.csv")] if valid else []), "--task", "binary", "--model", str(checkpoint),
            "--epochs", str(epochs), "--patience", str(patience), "--lr", "3e-3", "--batch-size", "16", "--max-length", "32", "--seed", "1",
            "--strategy", strategy, "--out", str(out)]


def _start_job(command: list[str], logs: Path, scratch: Path) -> list[subprocess.Popen]:
    """The chief (worker 0) and worker 1 of a two-worker job on loopback; each worker's
    temporary files go to scratch/worker-N, to see that it leaves none."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    processes = []
    for index in range(2):
        (scratch / f"worker-{index}").mkdir(parents=True, exist_ok=True)
        # a lost worker is noticed after 5 s of silence here (10 s by default); the two workers
        # share this machine's cores as two hosts would not, so each gets one TensorFlow thread
        # (two pools of two threads each on two cores made the tests 100 s instead of 70 s)
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                   TMPDIR=str(scratch / f"worker-{index}"), TFCLF_HEARTBEAT_SECONDS="5",
                   TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
        processes.append(subprocess.Popen(command, env=env, stdout=open(logs / f"w{index}.out", "w"),
                                          stderr=open(logs / f"w{index}.err", "w")))
    return processes


def _finish(processes: list[subprocess.Popen]) -> list[int]:
    deadline = time.time() + WAIT
    try:
        return [p.wait(timeout=max(1.0, deadline - time.time())) for p in processes]
    finally:
        for p in processes:
            p.kill()


def _epoch_learning_rates(logs: Path) -> list[float]:
    import tensorflow as tf

    rates = {}
    for events in sorted((logs / "train").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.tag == "epoch_learning_rate":
                    rates[event.step] = float(tf.make_ndarray(value.tensor))
    return [rates[k] for k in sorted(rates)]


def _best_epoch_steps(run: Path) -> int:
    """The optimizer's step count in the best epoch's checkpoint."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run / "checkpoints" / "best"))
    return int(reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))


def test_two_workers_train_as_one_process_does_survive_a_killed_worker_and_only_the_chief_writes(
        texts, tiny_bert_two_layers, tmp_path):
    """One job, killed and started again: the one-line failure, the resume, then the finished
    run against the same training in one process (a job of its own for each would double the
    test's time, most of it starting processes). Two layers: with this draw the resumed job and
    the single run stop early at the same epoch (one layer's runs end an epoch apart, on the edge)."""
    tiny_bert = tiny_bert_two_layers
    out, single_out, scratch = tmp_path / "run", tmp_path / "single", tmp_path / "scratch"
    command = _command(texts, tiny_bert, out, epochs=5, patience=1, strategy="multiworker")
    (tmp_path / "killed").mkdir()
    # the killed worker cannot clean up after itself (AutoGraph's files): a scratch of its own
    first_chief, first_worker = _start_job(command, tmp_path / "killed", tmp_path / "killed" / "scratch")
    # the same training in one process: in this one, beside the job
    from tfclf import TextClassifier

    failed: list[BaseException] = []

    def alone() -> None:
        try:
            TextClassifier.from_pretrained(str(tiny_bert), task="binary", epochs=5, patience=1, learning_rate=3e-3,
                                           batch_size=16, max_length=32, seed=1).fit(
                texts / "train.csv", valid=texts / "valid.csv", run_dir=single_out, verbose=0)
        except BaseException as err:  # a thread's exception would only be printed: the test raises it
            failed.append(err)

    alone_thread = threading.Thread(target=alone)
    alone_thread.start()
    deadline = time.time() + WAIT
    training = staging(out)  # where the run trains until it finishes
    while len(read_history(training / "history.csv")) < 1 and time.time() < deadline and first_chief.poll() is None:
        time.sleep(0.05)
    first_worker.send_signal(signal.SIGKILL)  # epoch 2 has begun: the chief wrote epoch 1's row
    killed = time.time()
    code = _finish([first_chief])[0]
    waited = time.time() - killed
    assert len(read_history(training / "history.csv")) == 1 and not out.exists()
    lines = (tmp_path / "killed" / "w0.err").read_text().strip().splitlines()
    assert code == 1 and lines[-1].startswith("tfclf: error: the multi-worker job lost a peer ("), lines[-3:]
    assert "worker/replica:0/task:1" in lines[-1] and "resume" in lines[-1]
    assert not any(line.startswith("Traceback") for line in lines)
    assert waited < 30, f"the chief took {waited:.0f} s to notice"

    job = _start_job(command, tmp_path, scratch)  # the same command again, on both hosts
    alone_thread.join(timeout=WAIT)
    if failed:
        raise failed[0]
    codes = _finish(job)
    assert codes == [0, 0], [(tmp_path / f"w{i}.err").read_text()[-2000:] for i in range(2)]
    assert "resuming the unfinished run" in (tmp_path / "w0.err").read_text()
    chief_out = (tmp_path / "w0.out").read_text()
    assert "Epoch 2/5" in chief_out and "Epoch 1/5" not in chief_out

    chief, alone = read_history(out / "history.csv"), read_history(single_out / "history.csv")
    worker = json.loads((tmp_path / "w1.out").read_text()[(tmp_path / "w1.out").read_text().rindex('{\n  "run"'):])
    assert worker["worker"] == "worker 1"
    # both workers saw the same (all-reduced) figures every epoch after the resume
    np.testing.assert_allclose(worker["history"]["loss"], [r["loss"] for r in chief[1:]], rtol=1e-6)
    np.testing.assert_allclose(worker["history"]["val_accuracy"], [r["val_accuracy"] for r in chief[1:]], rtol=1e-6)
    # epoch 1, before the kill, as in one process, within float summation order: a global batch of 16, split 8 + 8
    assert abs(chief[0]["loss"] - alone[0]["loss"]) < 0.01 + 0.05 * alone[0]["loss"], (chief, alone)
    # early stopping ended both runs at the same epoch, before the last (the resumed epochs draw
    # other batches than one uninterrupted run, so the later losses are compared loosely)
    assert [r["epoch"] for r in chief] == [r["epoch"] for r in alone] and len(alone) < 5, (chief, alone)
    assert abs(chief[-1]["loss"] - alone[-1]["loss"]) < 0.05 + 0.25 * alone[-1]["loss"], (chief, alone)
    assert chief[-1]["val_accuracy"] > 0.9
    # the same global steps (restored on resume), and the learning-rate schedule over the same number of them
    best = 1 + int(np.argmax([r["val_accuracy"] for r in chief]))
    assert _best_epoch_steps(out) == 20 * best and _best_epoch_steps(single_out) % 20 == 0
    np.testing.assert_allclose(_epoch_learning_rates(out / "logs"), _epoch_learning_rates(single_out / "logs"),
                               rtol=1e-6)

    # only the chief wrote the run folder (TensorBoard names its files after the writing
    # process): the chief before the kill and after it
    writers = {p.name.split(".")[-3] for p in (out / "logs").rglob("events.out.tfevents.*")}
    assert writers <= {str(job[0].pid), str(first_chief.pid)} and str(job[0].pid) in writers, writers
    assert not (out / "backup").exists() and (out / "weights" / "model.index").exists() and (out / "report.md").exists()
    assert not [p for p in out.rglob("*") if "workertemp" in str(p)], "a worker's scratch is left in the run folder"
    assert not list((scratch / "worker-1").iterdir()), "the worker left its scratch folder"


def test_multiworker_without_tf_config_is_one_line(texts, tiny_bert, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run(_command(texts, tiny_bert, tmp_path / "run", 1, 1, "multiworker"), env=env,
                            capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "tfclf: error: --strategy multiworker needs TF_CONFIG (the cluster and this worker's task; see "
        "docs/DISTRIBUTED.md); on one host use --strategy default or mirrored"]
    bad = dict(env, TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}')
    result = subprocess.run(_command(texts, tiny_bert, tmp_path / "run", 1, 1, "multiworker"), env=bad,
                            capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 2 and "TF_CONFIG: task worker 3 is not in its cluster" in result.stderr
    assert "Traceback" not in result.stderr
