"""A run folder holds exactly one finished run, and is replaced whole, as TF Serving's versions are.

    RUN/config.json          every setting (tfclf/config.py)
    RUN/labels.json, thresholds.json, backbone/, weights/   the model
    RUN/history.csv, logs/   training's epochs (document_history.csv: a two-stage run's stage 2)
    RUN/metrics.json, predictions/, plots/, report.md       evaluations and what `report` draws
    RUN/run.json             written last: the run's id, when and on what data it was trained

    .RUN.tfclf/              beside RUN, tfclf's own: the training lock, the swap lock, and
                             next/, where a training runs until it finishes (training.py)

A training never writes into RUN: it trains in .RUN.tfclf/next/ and `publish` puts the result
in RUN's place in one rename (an atomic exchange where the file system has one), so a reader
finds the old run or the new one, never a mix. An evaluation is recorded under the swap lock,
and only into the run it evaluated.
"""
from __future__ import annotations

import contextlib
import csv
import ctypes
import datetime
import io
import os
import re
import shutil
import socket
import uuid
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tfclf.config import RunConfig
from tfclf.errors import TfclfError
from tfclf.storage import lock
from tfclf.storage.atomic import atomic_path, atomic_write_json, atomic_write_text, read_json, read_json_object, \
    replace_folder

CONFIG, LABELS, THRESHOLDS, METRICS, RUN = "config.json", "labels.json", "thresholds.json", "metrics.json", "run.json"
WEIGHTS = "weights/model"  # a TensorFlow checkpoint prefix: weights/model.index and its data
LEGACY_ID = "before-run.json"  # the id of a run folder written before run.json existed


def aside(run_dir: Path) -> Path:
    """tfclf's own folder beside RUN: locks, and the training that will replace RUN."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.tfclf"


def staging(run_dir: Path) -> Path:
    """Where a training into RUN runs until it finishes."""
    return aside(run_dir) / "next"


@contextlib.contextmanager
def swapping(run_dir: Path) -> Iterator[None]:
    """The short lock of a swap and of a record: a record lands in the run it belongs to."""
    with lock.exclusive(aside(run_dir) / "swap.lock", "", wait=True):
        yield


def run_id(run_dir: Path) -> str | None:
    """The id of the finished run in `run_dir`, or None where there is none."""
    run_dir = Path(run_dir)
    if (run_dir / RUN).is_file():
        return str(read_json_object(run_dir / RUN, RUN).get("id"))
    legacy = all((run_dir / f).is_file() for f in (CONFIG, LABELS, THRESHOLDS, WEIGHTS + ".index"))
    return LEGACY_ID if legacy else None


def require_finished(run_dir: str | Path) -> Path:
    """`run_dir` if it holds a finished run; otherwise one line saying what the folder is."""
    run_dir = Path(run_dir)
    if run_id(run_dir) is not None:
        missing = [f for f in (CONFIG, LABELS, THRESHOLDS, WEIGHTS + ".index") if not (run_dir / f).is_file()]
        if missing:  # a finished run is published whole: something removed its files since
            raise TfclfError(f"{run_dir}: a damaged run (no {missing[0]}); train it again (tfclf train --out "
                             f"{run_dir} --overwrite)")
        return run_dir
    training = staging(run_dir)
    if (training / CONFIG).is_file():
        raise TfclfError(f"{run_dir}: no finished run yet: its training has not finished (it is running, or "
                         f"stopped; tfclf train with --out {run_dir} and the same settings resumes it)")
    if (run_dir / CONFIG).is_file():
        raise TfclfError(f"{run_dir}: an unfinished run (no {_first_missing(run_dir)}): training stopped before it "
                         f"ended; tfclf train with --out {run_dir} and --overwrite starts it again")
    raise TfclfError(f"{run_dir}: not a tfclf run folder (no {CONFIG})")


def _first_missing(run_dir: Path) -> str:
    return next(f for f in (LABELS, THRESHOLDS, WEIGHTS + ".index") if not (run_dir / f).is_file())


def is_run_folder(path: Path) -> bool:
    """Whether `path` is empty, missing, or a tfclf run (finished or not): what --overwrite may replace."""
    return not path.exists() or (path.is_dir() and (not any(path.iterdir()) or (path / CONFIG).is_file()))


def write_run(folder: Path, data_fingerprint: str | None) -> str:
    """run.json, written last into a finished run: what makes it one. Returns the run's id."""
    found = uuid.uuid4().hex
    atomic_write_json(folder / RUN, {"id": found, "finished": datetime.datetime.now().astimezone().isoformat(
        timespec="seconds"), "host": socket.gethostname(), "data": data_fingerprint})
    return found


def publish(folder: Path, run_dir: Path) -> None:
    """Put the finished run in `folder` in `run_dir`'s place: one atomic exchange of the two folders
    (Linux's renameat2), or, where the file system has none, two renames that the next training
    completes if a crash comes between them. The old run is then removed."""
    run_dir = Path(run_dir)
    with swapping(run_dir):
        if not run_dir.exists():
            folder.rename(run_dir)
            return
        if _exchange(folder, run_dir):
            shutil.rmtree(folder)
            return
        old = aside(run_dir) / "old"
        shutil.rmtree(old, ignore_errors=True)
        run_dir.rename(old)
        folder.rename(run_dir)
        shutil.rmtree(old, ignore_errors=True)


def recover(run_dir: Path) -> None:
    """Complete a publish that two renames did not finish: the new run is in place, or the old one
    goes back."""
    old = aside(run_dir) / "old"
    if old.exists():
        if run_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.rename(run_dir)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 with RENAME_EXCHANGE); False where it is not there."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return done == 0


def save(run_dir: Path, config, labels, thresholds: np.ndarray, tokenizer_spec, backbone_config,
         write_weights: Callable[[Path], None]) -> Path:
    """Write a model's files into `run_dir` (a training's folder, before it is published):
    settings, labels, thresholds, then backbone/ (tokenizer files and the backbone's config.json)
    and weights/, each folder swapped in whole."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir / CONFIG, config)
    atomic_write_json(run_dir / LABELS, labels.to_json())
    write_thresholds(run_dir, labels, thresholds)

    def write_backbone(folder: Path) -> None:
        tokenizer_spec.save(folder)
        backbone_config.save_pretrained(str(folder))

    replace_folder(run_dir / "backbone", write_backbone)
    replace_folder(run_dir / "weights", write_weights)
    return run_dir


def write_thresholds(folder: Path, labels, thresholds: np.ndarray) -> None:
    # one threshold per output unit: per label, or for the positive class of a binary task
    named = labels.classes[-labels.num_outputs:]
    atomic_write_json(folder / THRESHOLDS, dict(zip(named, map(float, thresholds))))


def read_thresholds(folder: Path) -> np.ndarray:
    return np.array([float(v) for v in read_json(folder / THRESHOLDS).values()])


def load(run_dir: str | Path) -> tuple[Path, RunConfig, dict, np.ndarray]:
    """(folder, RunConfig, labels.json, thresholds) of a finished run."""
    run_dir = require_finished(run_dir)
    return run_dir, config_of(run_dir), read_json(run_dir / LABELS), read_thresholds(run_dir)


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
        raise TfclfError(f"{path}: {err.raw}") from None


def write_config(path: str | Path, config: RunConfig) -> None:
    atomic_write_json(path, config.to_json())


def record(run_dir: Path, name: str, result: dict, probs: np.ndarray, targets: np.ndarray,
           texts: dict[int, str] | None = None, run: str | None = None) -> None:
    """Merge `result` into metrics.json under `name`, and keep the probabilities and targets (and
    the texts of the rows a report may show, `texts` by row) behind it for `tfclf report`. With
    `run` (the id of the run that was evaluated), only into that run: a run folder replaced
    meanwhile refuses it."""
    run_dir = Path(run_dir)
    with swapping(run_dir) if run is not None else contextlib.nullcontext():
        if run is not None and run_id(run_dir) != run:
            raise TfclfError(f"{run_dir} holds another run than the one evaluated (replaced while the evaluation "
                             "ran, or another folder): its figures are not recorded; evaluate that run again")
        path = run_dir / METRICS
        recorded = read_json(path) if path.exists() else {}
        recorded[name] = result
        with atomic_path(run_dir / "predictions" / f"{safe_name(name)}.npz") as tmp:
            np.savez_compressed(tmp, probabilities=probs, targets=targets, **(text_arrays(texts) if texts else {}))
        atomic_write_json(path, recorded)


def text_arrays(texts: dict[int, str]) -> dict[str, np.ndarray]:
    """Texts by row as one array of UTF-8 bytes, their offsets and their rows: a fixed-width string
    array would take (texts x the longest text x 4) bytes, 40 GB for 10,000 texts with one 1 MB
    document."""
    rows = sorted(texts)
    encoded = [texts[r].encode("utf-8", "replace") for r in rows]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return {"text_bytes": np.frombuffer(b"".join(encoded), np.uint8), "text_offsets": offsets,
            "text_rows": np.array(rows, np.int64)}


def kept_text(data, i: int) -> str | None:
    """The text of row `i` of a predictions file, where it was kept (written by `text_arrays`, or
    every text as strings by older tfclf)."""
    if "text_bytes" in data.files:
        at = np.searchsorted(data["text_rows"], i)
        if at == len(data["text_rows"]) or data["text_rows"][at] != i:
            return None
        start, end = data["text_offsets"][at], data["text_offsets"][at + 1]
        return data["text_bytes"][start:end].tobytes().decode("utf-8")
    return str(data["texts"][i]) if "texts" in data.files else None


def keeps_texts(data) -> bool:
    return "text_bytes" in data.files or "texts" in data.files


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
