"""Random lifecycles of one run folder, as users (and clusters) drive them: trainings with other
settings and data, SIGKILLs at random moments, reruns, evaluations and predictions. A killed
training is a real `tfclf` process (a SIGKILL needs one); the other steps run `tfclf`'s main() in
this process, as the command does, without starting TensorFlow again for each (5 s a step). After
every step the folder refuses with one line, or answers as exactly one training that finished;
and no evaluation recorded for the run that answers is lost.

Seeded (TFCLF_LIFECYCLE_SEED picks another sequence) and bounded in steps and time, so that it
stays in `make test`."""
import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from conftest import signal_texts
from tfclf.storage import run_folder

SEED = int(os.environ.get("TFCLF_LIFECYCLE_SEED", "2026"))
MAX_STEPS, SECONDS = 7, 60  # a step starts only while both allow it (make test's time: 15 min on 2 cores)


def test_random_lifecycles_of_one_run_folder(tiny_bert, tmp_path):
    rng = random.Random(SEED)
    for name, seed in (("A", 0), ("B", 1), ("probe", 2)):
        texts, labels = signal_texts(160 if name != "probe" else 40, seed)
        pd.DataFrame({"text": texts, "labels": labels}).to_csv(tmp_path / f"{name}.csv", index=False)
    run = tmp_path / "run"
    references: dict[str, np.ndarray] = {}  # run id -> its probabilities on the probe (its validation set)
    settings: dict[str, str] = {}  # run id -> the pooling it was trained with
    evaluations: dict[str, set] = {}  # run id -> the evaluations recorded for it
    last_train, log = None, []
    started = time.time()
    for step in range(MAX_STEPS):
        if time.time() - started > SECONDS:
            break
        # weighted toward what changes the folder: trainings, kills and reruns of the last command
        kind = "train" if step == 0 else rng.choices(["train", "kill", "rerun", "predict", "evaluate"],
                                                      [2, 4, 3, 1, 1])[0]
        if kind == "rerun" and last_train is None:
            kind = "predict"
        if kind in ("train", "kill"):
            last_train = (rng.choice("AB"), rng.choice(["cls", "mean"]), rng.random() < 0.6)
        before = run_folder.run_id(run)
        if kind in ("train", "kill", "rerun"):
            data, pooling, overwrite = last_train
            command = _command(tiny_bert, tmp_path / f"{data}.csv", tmp_path / "probe.csv", pooling, overwrite, run)
            outcome = _kill(command, rng.uniform(2.0, 14.0)) if kind == "kill" else _run(command)
            log.append((kind, data, pooling, overwrite, outcome))
            now = run_folder.run_id(run)
            if now != before and now is not None:  # a training finished (a killed one just before the kill)
                assert outcome in (0, "killed"), log
                assert before is None or overwrite, f"a finished run was replaced without --overwrite: {log}"
                with np.load(run / "predictions" / "valid.npz") as recorded:
                    references[now] = recorded["probabilities"][:, 0]
                settings[now], evaluations[now] = pooling, set()
            elif outcome == 0:
                raise AssertionError(f"a training exited 0 and left no new run: {log}")
        elif kind == "predict":
            outcome = _predict(run, tmp_path, references)
            log.append((kind, outcome))
        else:
            name = tmp_path / f"eval{step}.csv"
            name.write_bytes((tmp_path / "probe.csv").read_bytes())
            outcome = _run(_tfclf("evaluate", "--run", run, "--data", name))
            log.append((kind, outcome))
            if outcome == 0:
                evaluations[run_folder.run_id(run)].add(str(name))
        _check(run, references, settings, evaluations, log)
        print(f"{time.time() - started:5.1f} s  {log[-1]}")
    assert any(entry[0] == "train" and entry[-1] == 0 for entry in log), log


def _tfclf(*args) -> list[str]:
    return [sys.executable, "-m", "tfclf", *map(str, args)]


def _command(checkpoint, train, probe, pooling, overwrite, run) -> list[str]:
    return _tfclf("train", "--train", train, "--valid", probe, "--task", "binary", "--model", checkpoint, "--epochs", 2,
                  "--lr", "3e-3", "--max-length", 16, "--batch-size", 16, "--pooling", pooling, "--out", run,
                  # float32 on every CPU: `auto` predicts with bf16 matmuls on AVX512-BF16/AMX, whose rounding
                  # could differ between the training's validation batches and predict's (the 1e-5 below)
                  "--precision", "float32",
                  *(["--overwrite"] if overwrite else []))


def _run(command) -> int:
    """Exit status of the command, run as main() in this process; a refusal must be one line and no
    traceback (an exception other than tfclf's refusals propagates out of main() and fails the test)."""
    from tfclf.cli import main

    assert command[1:3] == ["-m", "tfclf"], command
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(command[3:])
    stderr = err.getvalue()
    if status != 0:
        errors = [line for line in stderr.splitlines() if line.startswith("tfclf: error:")]
        assert status == 2 and len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return status


def _kill(command, after: float):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return process.wait(timeout=after)  # it ended first: refused, or done
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return "killed"


def _predict(run, tmp_path, references) -> int:
    out = tmp_path / "predicted.jsonl"
    status = _run(_tfclf("predict", "--run", run, "--data", tmp_path / "probe.csv", "--out", out))
    answering = run_folder.run_id(run)
    assert (status == 0) == (answering is not None), (status, answering)
    if status == 0:
        positive = [json.loads(line)["probabilities"]["pos"] for line in out.read_text().splitlines()]
        np.testing.assert_allclose(positive, references[answering], atol=1e-5)
    return status


def _check(run, references, settings, evaluations, log) -> None:
    """The folder holds no run, or one training that finished, whole, with all its evaluations."""
    answering = run_folder.run_id(run)
    if answering is None:
        return
    assert answering in references, f"the folder answers as no training that finished: {log}"
    assert json.loads((run / "config.json").read_text())["pooling"] == settings[answering], log
    recorded = json.loads((run / "metrics.json").read_text())
    assert evaluations[answering] <= set(recorded), f"an evaluation of the answering run was lost: {log}"
