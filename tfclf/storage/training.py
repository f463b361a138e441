"""Where a training runs, and when it resumes: one training per run folder at a time, aside from
the finished run it will replace.

A training into RUN runs in .RUN.tfclf/next/ (run_folder.staging) under a lock the OS keeps, and
records how far it got (stage 1, stage 2, validation). A rerun resumes it only when its
settings, its label space and its data (a fingerprint of the training and validation texts and
labels) are the ones it started with; otherwise one line says what differs. A finished run in
RUN is replaced only when asked (--overwrite), and only when the new one has finished.
"""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from tfclf.errors import TfclfError, option
from tfclf.storage import lock
from tfclf.storage.atomic import atomic_write_json, read_json
from tfclf.storage.run_folder import (CONFIG, aside, is_run_folder, read_config, recover, run_id, staging,
                                      write_config)

IDENTITY, PROGRESS = "identity.json", "progress.json"
STAGES = ("stage1", "stage2", "validation")


@dataclasses.dataclass
class Training:
    """A training's folder and how far an earlier attempt got; `run_dir` is what it replaces when
    it finishes (None: a folder of its own that nothing keeps)."""
    work: Path
    run_dir: Path | None
    resume: bool = False  # stage 1 continues from its backup
    done: frozenset[str] = frozenset()  # stages an earlier attempt finished
    shared: bool = False  # another process's folder (a multi-worker job's chief's): read, never written

    @property
    def keeps(self) -> bool:
        return self.run_dir is not None

    def finished(self, stage: str) -> None:
        """Record that `stage` is done: a rerun after a kill starts after it."""
        self.done = self.done | {stage}
        if self.keeps:
            atomic_write_json(self.work / PROGRESS, {"done": [s for s in STAGES if s in self.done]})


@contextlib.contextmanager
def training_in(run_dir: str | Path | None, config, identity: dict, chief: bool = True,
                overwrite: bool = False) -> Iterator[Training]:
    """The folder a training writes, locked, set up or resumed; a temporary one without `run_dir`,
    removed however the block ends. A multi-worker job's other workers (not `chief`) read the
    chief's training folder (its backup) and neither lock nor write it."""
    if run_dir is None:
        work = Path(tempfile.mkdtemp(prefix="tfclf-"))
        try:
            yield Training(work, None)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    run_dir = Path(run_dir)
    if not chief:
        yield _follow(run_dir, config, identity)
        return
    check_replaceable(run_dir, overwrite)
    busy = f"{run_dir}: another tfclf training is writing this run folder; wait for it, or use another --out"
    with lock.exclusive(aside(run_dir) / "train.lock", busy):
        recover(run_dir)
        yield _prepare(run_dir, config, identity, overwrite)


def check_replaceable(run_dir: str | Path, overwrite: bool) -> None:
    """A training may write `run_dir`: it is empty, new, or a run that `overwrite` lets it replace.
    (The CLI asks before TensorFlow loads; training_in asks again under the lock.)"""
    run_dir = Path(run_dir)
    if not is_run_folder(run_dir):
        raise TfclfError(f"{run_dir} is not a tfclf run folder (it holds other files): choose another "
                         f"{option('run_dir', '--out')}")
    held = run_id(run_dir) is not None or (run_dir / CONFIG).is_file()
    if held and not overwrite:
        work = staging(run_dir)
        overwriting = option("overwrite", python="overwrite=True")  # a flag: it has no value to show
        pending = f" (a training to replace it is unfinished in {work}: {overwriting} with its settings and data " \
            "resumes it)" if (work / CONFIG).is_file() else ""
        what = "a finished run" if run_id(run_dir) is not None else "an unfinished run from an earlier tfclf"
        raise TfclfError(f"{run_dir} holds {what}{pending}; {overwriting} trains a new one beside it and replaces it "
                         f"when that one finishes, or use another {option('run_dir', '--out')}")


def _prepare(run_dir: Path, config, identity: dict, overwrite: bool) -> Training:
    work = staging(run_dir)
    held = run_id(run_dir) is not None or (run_dir / CONFIG).is_file()
    check_replaceable(run_dir, overwrite)
    differs = _differences(work, config, identity) if (work / CONFIG).is_file() else None
    if differs is None or (differs and overwrite):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        write_config(work / CONFIG, config)
        atomic_write_json(work / IDENTITY, identity)
        if held:
            print(f"tfclf: training in {work}; {run_dir} keeps its run until this one finishes", file=sys.stderr)
        return Training(work, run_dir)
    if differs:
        raise TfclfError(f"{run_dir} has an unfinished training with {differs[0]}; rerun with those to resume it, or "
                         "add --overwrite (overwrite=True) to start over")
    done = frozenset(read_json(work / PROGRESS)["done"]) if (work / PROGRESS).is_file() else frozenset()
    said = ", ".join(s.replace("stage", "stage ") for s in STAGES if s in done)
    print(f"tfclf: resuming the unfinished run in {run_dir}" + (f" ({said} done)" if said else ""), file=sys.stderr)
    return Training(work, run_dir, resume=(work / "backup").is_dir(), done=done)


def _differences(work: Path, config, identity: dict) -> list[str]:
    """What makes the training in `work` another one than (config, identity), most telling first."""
    before = read_config(work / CONFIG)
    found = [f"--{k.replace('_', '-')} {v!r} (now {getattr(config, k)!r})" for k, v in dataclasses.asdict(before).items()
             if getattr(config, k) != v]
    saved = read_json(work / IDENTITY) if (work / IDENTITY).is_file() else {}
    if saved.get("labels") != identity.get("labels"):
        old, new = (", ".join((d or {}).get("classes", [])) for d in (saved.get("labels"), identity.get("labels")))
        found.append(f"the labels {old} (now {new})")
    if saved.get("data") != identity.get("data"):
        found.append("other training or validation data (the fingerprint of their texts and labels differs)")
    return found


def _follow(run_dir: Path, config, identity: dict) -> Training:
    """A non-chief worker: the chief's training folder, to resume from its backup, never written."""
    work = staging(run_dir)
    resumes = (work / "backup").is_dir() and (work / CONFIG).is_file() and not _differences(work, config, identity)
    if resumes:
        print(f"tfclf: resuming the unfinished run in {run_dir} with the chief", file=sys.stderr)
    return Training(work, None, resume=resumes, shared=True)
