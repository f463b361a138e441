"""A run's life in its folder: fit stage by stage (each recorded, so a rerun after a kill starts
after the last one done), publish the finished run in the run folder's place, save and load.

The classifier (classifier.py) holds the model; this module decides what is trained, resumed,
written and kept. Stage 1 is the classifier on token sequences (training/fit.py), stage 2 what
the reader trains after it (readers.py; nothing for truncation), then validation: thresholds and
the validation figures. storage/training.py says where a training runs and when it resumes;
storage/run_folder.py how a finished run replaces the old one.
"""
from __future__ import annotations

import shutil
import tempfile
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import tf_keras as keras

from tfclf import tasks
from tfclf.config import chosen
from tfclf.console import notice
from tfclf.data.inputs import Labelled
from tfclf.data.labels import LabelSpace
from tfclf.errors import TfclfError
from tfclf.evaluation import metrics
from tfclf.evaluation.report import MistakeTexts
from tfclf.models import backbones, legacy
from tfclf.runtime import distribute, precision as precisions
from tfclf.storage import lock, run_folder
from tfclf.storage.atomic import replace_folder
from tfclf.storage.training import Training, training_in
from tfclf.text.wordpiece import TokenizerSpec
from tfclf.training import fit as fitting

# what a training leaves in its folder that a finished run does not keep
_SCAFFOLD = ("backup", "identity.json", "progress.json")


def fit(clf, data: Labelled, run_dir, overwrite: bool, verbose, previous: keras.Model | None = None) -> None:
    """Stage 1, then `finish`; in `run_dir` (resumable), or in a temporary folder removed at the end."""
    cfg = clf.config
    start = clf.checkpoint or backbones.resolve_checkpoint(cfg.model)
    chief = distribute.is_chief(cfg.strategy)
    with training_in(run_dir, cfg, _identity(data), chief, overwrite) as run, clf.reader.caching():
        predicts_in = precisions.for_prediction(cfg.precision, cfg.task)
        if "stage1" in run.done:
            clf.model = fitting.build_model(cfg, clf.backbone_config, None, clf.labels.num_outputs,
                                            built_in=predicts_in)
            clf.model.load_weights(str(run.work / run_folder.WEIGHTS)).expect_partial()
            clf.history = _history(run.work / "history.csv")
        else:
            valid = clf.reader.sequences(data.valid.texts, data.y_valid) if data.valid is not None else None
            weights = _class_weights(clf, data)

            def build() -> keras.Model:
                model = fitting.build_model(cfg, clf.backbone_config, start, clf.labels.num_outputs, previous,
                                            fitting.prior_of(cfg.task, data.y_train, clf.labels.num_outputs, weights))
                if chief:  # the checkpoint's weights loaded: nothing but training is left to fail
                    _say_chosen(clf, data)
                return model

            model, clf.history = fitting.train_sequences(
                build, cfg, fitting.lr_multiplier(cfg, clf.backbone_config),
                *clf.reader.sequences(data.train.texts, data.y_train), valid, clf.tokenizer.pad_id, run.work,
                run.resume, verbose, class_weights=weights)
            clf.model = model.in_precision(predicts_in)  # the same weights (multi-label `auto` predicts in float32)
            _done(clf, run, "stage1")
        finish(clf, data, run, verbose)


def _say_chosen(clf, data: Labelled) -> None:
    """The settings tfclf chose for this fit, on stderr, one line each, as training starts: after
    every check on the data, the settings and the checkpoint passed, so they never precede an error."""
    split = (len(data.valid.texts), len(data.valid.texts) + len(data.train.texts)) if data.held_out else None
    for line in chosen(clf.config, clf.backbone_config.hidden_size, clf.given, data.valid is not None, split):
        notice(line)


def refit_documents(clf, data: Labelled, run_dir, overwrite: bool, verbose) -> None:
    """Stage 2 again on the fine-tuned stage 1 (kept as it is), then validation and the run folder."""
    with training_in(run_dir, clf.config, _identity(data), overwrite=overwrite) as run, clf.reader.caching():
        if "stage1" not in run.done:
            _done(clf, run, "stage1")
        finish(clf, data, run, verbose)


def finish(clf, data: Labelled, run: Training, verbose) -> None:
    """Stage 2 and validation (each unless an earlier attempt finished it), then the run published
    in its folder. A multi-worker job's other workers keep nothing: their records go to scratch."""
    scratch = tempfile.TemporaryDirectory(prefix="tfclf-worker-") if run.shared else nullcontext(str(run.work))
    with scratch as work:
        work = Path(work)
        valid = (data.valid.texts, data.y_valid) if data.valid is not None else None
        if "stage2" in run.done:
            clf.reader.load(run.work / "weights", clf.model, clf.labels.num_outputs)
        else:
            clf.reader.fit(clf.model, data.train.texts, data.y_train, valid, clf.labels.num_outputs, work, verbose,
                           class_weights=_class_weights(clf, data))
            _done(clf, run, "stage2")
        if "validation" in run.done:
            clf.thresholds = run_folder.read_thresholds(run.work)
        else:
            clf.thresholds = np.full(clf.labels.num_outputs, 0.5)
            if valid is not None:
                probs = clf._probabilities(valid[0])
                clf.thresholds, result = metrics.validation(clf.config.task, valid[1], probs, clf.labels.classes)
                result = metrics.with_fixed_thresholds(clf.config.task, result, valid[1], probs, clf.labels.classes)
                mistakes = MistakeTexts(clf.config.task, clf.thresholds)
                mistakes.add(0, valid[1], probs, valid[0])
                run_folder.record(work, "valid", result, probs, valid[1], mistakes.texts)
            if run.keeps:
                run_folder.write_thresholds(run.work, clf.labels, clf.thresholds)
            run.finished("validation")
        if run.keeps:
            write(clf, run.work)
            for scaffold in _SCAFFOLD:
                path = run.work / scaffold
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            clf.run_id = run_folder.write_run(run.work, data.fingerprint())
            run_folder.publish(run.work, run.run_dir)


def _done(clf, run: Training, stage: str) -> None:
    """Stage `stage` finished: its weights into the training's folder, then the mark a rerun reads."""
    if run.keeps:
        replace_folder(run.work / "weights", lambda folder: _write_weights(clf, folder, stage != "stage1"))
    run.finished(stage)


def _write_weights(clf, folder: Path, with_reader: bool = True) -> None:
    clf.model.save_weights(str(folder / "model"))
    if with_reader:
        clf.reader.save(folder)


def write(clf, folder: Path) -> Path:
    """The model's files in `folder`: config, labels, thresholds, tokenizer, backbone config, weights."""
    return run_folder.save(folder, clf.config, clf.labels, clf.thresholds, clf.tokenizer.spec, clf.backbone_config,
                           lambda weights: _write_weights(clf, weights))


def save(clf, run_dir: Path, overwrite: bool) -> Path:
    """A trained classifier as the finished run in `run_dir`, replacing what is there only with
    `overwrite` (or when it is this classifier's own run)."""
    current = run_folder.run_id(run_dir)
    if not run_folder.is_run_folder(run_dir):
        raise TfclfError(f"{run_dir} is not a tfclf run folder (it holds other files): choose another folder")
    if current is not None and current != clf.run_id and not overwrite:
        raise TfclfError(f"{run_dir} holds another finished run; overwrite=True replaces it")
    busy = f"{run_dir}: a tfclf training is writing this run folder; wait for it, or save elsewhere"
    with lock.exclusive(run_folder.aside(run_dir) / "train.lock", busy):
        work = run_folder.aside(run_dir) / "save"
        shutil.rmtree(work, ignore_errors=True)
        write(clf, work)
        clf.run_id = run_folder.write_run(work, None)
        run_folder.publish(work, run_dir)
    return run_dir


def load(clf_class, run_dir, precision: str | None = None):
    """A trained classifier from a finished run folder, predicting in `precision` (one of
    runtime.precision.FOR_PREDICTION; default: the run's own setting, as runtime/precision.py's
    `for_prediction` decides it)."""
    run_dir, config, labels, thresholds = run_folder.load(run_dir)
    clf = clf_class(config, backbones.backbone_config(run_dir / "backbone"),
                    TokenizerSpec.from_directory(run_dir / "backbone"))
    clf.labels, clf.thresholds = LabelSpace.from_json(labels), thresholds
    clf.model = fitting.build_model(config, clf.backbone_config, None, clf.labels.num_outputs,
                                    built_in=precisions.for_prediction(precision or config.precision, config.task))
    prefix = run_dir / run_folder.WEIGHTS
    if legacy.is_legacy(prefix):  # written before tfclf had its own BERT layers
        legacy.load(clf.model, prefix)
    else:
        clf.model.load_weights(str(prefix)).expect_partial()
    clf.reader.load(run_dir / "weights", clf.model, clf.labels.num_outputs)
    clf.run_id = run_folder.run_id(run_dir)
    return clf


def _identity(data: Labelled) -> dict:
    return {"labels": data.labels.to_json(), "data": data.fingerprint()}


def _class_weights(clf, data: Labelled) -> np.ndarray | None:
    """--class-weight balanced, from the documents' labels (not their chunks': a long document
    counts once), for every stage of the run."""
    return tasks.balanced_weights(clf.config.task, data.y_train) if clf.config.class_weight == "balanced" else None


def _history(path: Path) -> dict:
    """Keras's history dict from history.csv (a resumed run that skips stage 1)."""
    rows = run_folder.read_history(path)
    return {k: [r[k] for r in rows if k in r] for k in dict.fromkeys(k for r in rows for k in r if k != "epoch")}
