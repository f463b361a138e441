"""A run folder: what `tfclf train` writes there, how each file is read back, and its lock.

    RUN/config.json          every setting (tfclf/config.py): written first, when training starts
    RUN/checkpoints/, backup/  while training: the best epoch, and where a resumed run restarts
    RUN/history.csv          one row per epoch, rewritten after each (read_history, write_history)
    RUN/labels.json, thresholds.json, backbone/, weights/   written when training ends
    RUN/metrics.json, predictions/, plots/, report.md       evaluations and what `report` draws
    RUN/.lock                the process id of the run training into the folder, while it does

A folder with config.json but no weights is an unfinished run: training stopped (or is still
going); `tfclf train` with the same --out resumes it.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tfclf.config import RunConfig
from tfclf.errors import TfclfError
from tfclf.storage.atomic import atomic_path, atomic_write_json, atomic_write_text, read_json, read_json_object, \
    replace_folder

CONFIG, LABELS, THRESHOLDS, METRICS = "config.json", "labels.json", "thresholds.json", "metrics.json"
WEIGHTS = "weights/model"  # a TensorFlow checkpoint prefix: weights/model.index and its data


def require_finished(run_dir: str | Path) -> Path:
    """`run_dir` if training finished there; otherwise one line saying what the folder is."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise TfclfError(f"{run_dir}: not a tfclf run folder (no {CONFIG})")
    for needed in (LABELS, THRESHOLDS, WEIGHTS + ".index"):
        if not (run_dir / needed).is_file():
            raise TfclfError(f"{run_dir}: an unfinished run (no {needed}): training stopped before it ended; "
                             f"tfclf train with --out {run_dir} and the same settings resumes it")
    return run_dir


@contextlib.contextmanager
def training_in(run_dir: str | Path | None, config, chief: bool = True) -> Iterator[tuple[Path, bool]]:
    """(folder, resumes?) for a training run in `run_dir` (a temporary folder when None),
    `prepare`d under RUN/.lock, which is held until the block ends: a second tfclf run pointed
    at the same folder stops with one line instead of taking the first one's backup for its own.

    A multi-worker job's other workers (not `chief`) share the chief's folder: they neither lock
    nor prepare it, and resume when the chief does (the same command finds the same backup)."""
    if not chief:
        if run_dir is None:
            raise TfclfError("a multi-worker job needs a run folder that every worker shares (--out, or "
                             "run_dir=): the workers resume from the chief's backup in it")
        resumes = _resumes(Path(run_dir), config)
        if resumes:
            print(f"tfclf: resuming the unfinished run in {run_dir} with the chief", file=sys.stderr)
        yield Path(run_dir), resumes
        return
    work = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="tfclf-"))
    work.mkdir(parents=True, exist_ok=True)
    lock = work / ".lock"
    _take(lock)
    try:
        yield work, prepare(work, config)
    finally:
        lock.unlink(missing_ok=True)


def _take(lock: Path) -> None:
    for _ in range(2):
        try:
            with open(lock, "x") as f:
                f.write(str(os.getpid()))
            return
        except FileExistsError:
            holder = lock.read_text().strip()
            if holder.isdigit() and _alive(int(holder)):
                raise TfclfError(f"{lock.parent}: another tfclf run (process {holder}) is training into this "
                                 "folder; wait for it, or use another --out") from None
            lock.unlink(missing_ok=True)  # left by a run that was killed
    raise TfclfError(f"{lock}: could not take the run folder's lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare(work: Path, config) -> bool:
    """Resume when `work` holds the backup of an unfinished run with the same settings; otherwise
    start clean (what an older run left there is removed) and write config.json. Returns whether
    this run resumes."""
    work.mkdir(parents=True, exist_ok=True)
    if _resumes(work, config):
        print(f"tfclf: resuming the unfinished run in {work}", file=sys.stderr)
        return True
    for stale in (METRICS, "history.csv", "report.md"):
        (work / stale).unlink(missing_ok=True)
    for folder in ("checkpoints", "backup", "predictions", "plots"):
        shutil.rmtree(work / folder, ignore_errors=True)
    write_config(work / CONFIG, config)
    return False


def _resumes(work: Path, config) -> bool:
    """Whether `work` holds the backup of an unfinished run with these settings (one line if
    its settings differ)."""
    if not ((work / "backup").is_dir() and (work / CONFIG).is_file()):
        return False
    if read_config(work / CONFIG) != config:
        raise TfclfError(f"{work} holds an unfinished run with other settings; use another --out, "
                         f"or delete {work / 'backup'} to start over")
    return True


def record(run_dir: Path, name: str, result: dict, probs: np.ndarray, targets: np.ndarray,
           texts=None) -> None:
    """Merge `result` into metrics.json under `name`, and keep the probabilities and targets
    (and the texts, when given) behind it for `tfclf report`'s plots and mistakes."""
    path = Path(run_dir) / METRICS
    recorded = read_json(path) if path.exists() else {}
    recorded[name] = result
    atomic_write_json(path, recorded)
    with atomic_path(Path(run_dir) / "predictions" / f"{safe_name(name)}.npz") as tmp:
        extra = {"texts": np.array(list(texts), dtype=np.str_)} if texts is not None else {}
        np.savez_compressed(tmp, probabilities=probs, targets=targets, **extra)


def save(run_dir: Path, config, labels, thresholds: np.ndarray, tokenizer_spec, backbone_config,
         write_weights: Callable[[Path], None]) -> Path:
    """Write a finished run: settings, labels, thresholds, then backbone/ (tokenizer files and the
    backbone's config.json) and weights/, each folder swapped in whole."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir / CONFIG, config)
    atomic_write_json(run_dir / LABELS, labels.to_json())
    # one threshold per output unit: per label, or for the positive class of a binary task
    named = labels.classes[-labels.num_outputs:]
    atomic_write_json(run_dir / THRESHOLDS, dict(zip(named, map(float, thresholds))))

    def write_backbone(folder: Path) -> None:
        tokenizer_spec.save(folder)
        backbone_config.save_pretrained(str(folder))

    replace_folder(run_dir / "backbone", write_backbone)
    replace_folder(run_dir / "weights", write_weights)
    return run_dir


def load(run_dir: str | Path) -> tuple[Path, object, dict, np.ndarray]:
    """(folder, RunConfig, labels.json, thresholds) of a finished run."""
    run_dir = require_finished(run_dir)
    thresholds = np.array([float(v) for v in read_json(run_dir / THRESHOLDS).values()])
    return run_dir, config_of(run_dir), read_json(run_dir / LABELS), thresholds


def config_of(run_dir: str | Path) -> RunConfig:
    """The config of a run folder; a folder without one is a user mistake, said in one line."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise TfclfError(f"{run_dir}: not a tfclf run folder (no {CONFIG})")
    return read_config(path)


def read_config(path: str | Path) -> RunConfig:
    """A saved config.json (RunConfig.from_json); a file that is not one is said in one line."""
    saved = read_json_object(path, CONFIG)
    try:
        return RunConfig.from_json(saved)
    except TfclfError as err:
        raise TfclfError(f"{path}: {err}") from None


def write_config(path: str | Path, config: RunConfig) -> None:
    atomic_write_json(path, config.to_json())


def safe_name(name: str) -> str:
    """A file name for an evaluation named by its data path."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "data"


def read_history(path: Path) -> list[dict]:
    """history.csv (or document_history.csv): one dict per epoch, [] when there is none yet."""
    if not Path(path).exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(f)]


def write_history(path: Path, rows: list[dict]) -> None:
    """The rows of a history file, written atomically: a crash keeps the epochs written before."""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, out.getvalue())
