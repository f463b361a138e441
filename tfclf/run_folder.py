"""A run folder: what `tfclf train` writes there, and the one way a folder in it is replaced.

    RUN/config.json          every setting (tfclf/settings.py): written first, when training starts
    RUN/checkpoints/, backup/  while training: the best epoch, and where a resumed run restarts
    RUN/history.csv          one row per epoch, rewritten after each
    RUN/labels.json, thresholds.json, backbone/, weights/   written when training ends
    RUN/metrics.json, predictions/, plots/, report.md       evaluations and what `report` draws

A folder with config.json but no weights is an unfinished run: training stopped (or is still
going); `tfclf train` with the same --out resumes it.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable

from tfclf.errors import TfclfError

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


def replace_folder(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Write a folder beside `target`, then swap it in: a reader, or a crash at any moment,
    finds the old folder or the new one, never half of one and never neither."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old")
    if old.exists() and not target.exists():  # an earlier swap stopped between its two renames
        old.rename(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new."))
    try:
        write(tmp)
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        try:
            tmp.rename(target)
        except BaseException:
            if old.exists() and not target.exists():
                old.rename(target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
