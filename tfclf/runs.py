"""A run's life in its folder: fit stage by stage (each recorded, so a rerun after a kill starts
after the last one done), publish the finished run in the run folder's place, save and load.

A fit or a load produces a `Run` (trained.py); the classifier (classifier.py) keeps the one it
was given. Stage 1 is the classifier
on token sequences (training/fit.py), stage 2 what the reader trains after it (readers.py;
nothing for truncation), then validation: thresholds and the validation figures.
storage/training.py says where a training runs and when it resumes; storage/run_folder.py how a
finished run replaces the old one.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import tf_keras as keras

from tfclf import tasks
from tfclf.config import RunConfig, check_positions, chosen, default_learning_rate
from tfclf.console import notice
from tfclf.data import inputs
from tfclf.data.inputs import Labelled
from tfclf.data.labels import LabelSpace
from tfclf.errors import TfclfError
from tfclf.evaluation import metrics
from tfclf.evaluation.report import MistakeTexts
from tfclf.models import backbones, legacy
from tfclf.runtime import distribute, precision as precisions
from tfclf.serving import openvino
from tfclf.storage import lock, run_folder
from tfclf.storage.atomic import replace_folder
from tfclf.storage.training import Training, training_in
from tfclf.trained import Run, begin
from tfclf.training import fit as fitting

# what a training leaves in its folder that a finished run does not keep
_SCAFFOLD = ("backup", "identity.json", "progress.json")


def begin_from(params: dict, given: frozenset) -> Run:
    """An untrained run of the settings `params`: the checkpoint found, its limits checked, the
    learning rate chosen from its width where none was given."""
    config = RunConfig(**params)
    if config.strategy == "multiworker":  # joins the cluster now: before TensorFlow runs any op
        distribute.make_strategy(config.strategy)
    path = backbones.resolve_checkpoint(config.model)
    backbone_config = backbones.backbone_config(path)
    check_positions(config.max_length, backbones.positions(path, backbone_config), config.model)
    if config.learning_rate is None:  # chosen from the checkpoint, and saved as chosen
        config = dataclasses.replace(config, learning_rate=default_learning_rate(backbone_config.hidden_size))
    return begin(config, backbone_config, backbones.tokenizer_spec(path, backbone_config), path, given)


def head_settings(model: str, task: str | None) -> dict:
    """The settings a checkpoint's own classification head fixes (keep_head): its task, and its
    hidden layer's activation; a `task` given otherwise is an error."""
    path = backbones.resolve_checkpoint(model)
    head = backbones.checkpoint_head(path, backbones.backbone_config(path))
    if task is not None and task != head.task:
        raise TfclfError(f"{model}: its head is {head.task} ({', '.join(head.names)}), but task={task!r}; "
                         "leave task out to take the head's")
    return {"task": head.task, "head_layer": head.weights[0]}


def with_head(run: Run) -> Run:
    """`run`, begun on a checkpoint with its own classification head, made a trained one: the
    head's weights, its labels in id2label's order, its thresholds."""
    cfg = run.config
    if cfg.long_doc == "hierarchical":
        raise TfclfError("keep_head: a checkpoint's head reads one sequence; long_doc='hierarchical' trains its own")
    head = backbones.checkpoint_head(run.checkpoint, run.backbone_config)
    run.labels, run.thresholds = LabelSpace(cfg.task, head.names), np.asarray(head.thresholds, np.float32)
    run.model = fitting.build_model(cfg, run.backbone_config, run.checkpoint, run.labels.num_outputs,
                                    built_in=precisions.for_prediction(cfg.precision, cfg.task))
    _, hidden_kernel, hidden_bias, kernel, bias = head.weights
    run.model.get_layer("pre_logits").set_weights([hidden_kernel, hidden_bias])
    run.model.get_layer("logits").set_weights([kernel, bias])
    return run


def fittable(config, data: Labelled, previous: Run | None) -> Labelled:
    """`data` checked for the fit's settings and for the run it continues (a warm start): on that
    run's labels, encoded in its order (a checkpoint's head keeps id2label's, not sorted)."""
    if previous is not None and (set(data.labels.classes) != set(previous.labels.classes) or
                                 data.pairs != previous.config.pairs):
        raise TfclfError(f"warm_start=True needs the labels the model was trained on "
                         f"({', '.join(previous.labels.classes)}), got {', '.join(data.labels.classes)}"
                         if data.pairs == previous.config.pairs else
                         "warm_start=True needs the inputs the model was trained on: pairs, or single texts")
    if data.pairs and config.long_doc == "hierarchical":
        raise TfclfError("long_doc='hierarchical' reads one long text per example; a sentence pair is truncated "
                         "as a whole instead (pair_truncation)")
    return data if previous is None else data.in_space(previous.labels)


def fit(run: Run, data: Labelled, run_dir, overwrite: bool, verbose, previous: keras.Model | None = None) -> Run:
    """`run` trained on `data`: stage 1, then `finish`; in `run_dir` (resumable), or in a temporary
    folder removed at the end. `previous` is a model to continue from (warm start)."""
    cfg = run.config
    run.labels, run.model, run.run_id = data.labels, None, None
    start = run.checkpoint or backbones.resolve_checkpoint(cfg.model)
    chief = distribute.is_chief(cfg.strategy)
    with training_in(run_dir, cfg, _identity(data), chief, overwrite) as training, run.reader.caching():
        predicts_in = precisions.for_prediction(cfg.precision, cfg.task)
        if "stage1" in training.done:
            run.model = fitting.build_model(cfg, run.backbone_config, None, run.labels.num_outputs,
                                            built_in=predicts_in)
            run.model.load_weights(str(training.work / run_folder.WEIGHTS)).expect_partial()
            run.history = _history(training.work / "history.csv")
        else:
            valid = run.reader.sequences(data.valid.texts, data.y_valid) if data.valid is not None else None
            weights = _class_weights(run, data)

            def build() -> keras.Model:
                model = fitting.build_model(cfg, run.backbone_config, start, run.labels.num_outputs, previous,
                                            fitting.prior_of(cfg.task, data.y_train, run.labels.num_outputs, weights))
                if chief:  # the checkpoint's weights loaded: nothing but training is left to fail
                    _say_chosen(run, data)
                return model

            model, run.history = fitting.train_sequences(
                build, cfg, fitting.lr_multiplier(cfg, run.backbone_config),
                *run.reader.sequences(data.train.texts, data.y_train), valid, run.tokenizer.pad_id, training.work,
                # a multi-worker job's workers run the chief's callbacks (their variables are made in step)
                training.resume, verbose, class_weights=weights, kept=training.keeps or training.shared)
            run.model = model.in_precision(predicts_in)  # the same weights (multi-label `auto` predicts in float32)
            _done(run, training, "stage1")
        finish(run, data, training, verbose)
    return run


def _say_chosen(run: Run, data: Labelled) -> None:
    """The settings tfclf chose for this fit, on stderr, one line each, as training starts: after
    every check on the data, the settings and the checkpoint passed, so they never precede an error."""
    split = (len(data.valid.texts), len(data.valid.texts) + len(data.train.texts)) if data.held_out else None
    for line in chosen(run.config, run.backbone_config.hidden_size, run.given, data.valid is not None, split):
        notice(line)


def refit_documents(run: Run, data: Labelled, doc_pooling: str | None, run_dir, overwrite: bool, verbose) -> Run:
    """A new run: `run`'s stage 1 (kept as it is) with stage 2 trained again (with `doc_pooling`),
    then validation and the run folder."""
    run.require_trained()
    if not run.reader.two_stages:
        raise TfclfError("fit_documents needs a hierarchical run (long_doc='hierarchical')")
    config = dataclasses.replace(run.config, doc_pooling=doc_pooling or run.config.doc_pooling)
    new = begin(config, run.backbone_config, run.tokenizer.spec, run.checkpoint, run.given)
    new.labels, new.model, new.history = run.labels, run.model, run.history
    with training_in(run_dir, config, _identity(data), overwrite=overwrite) as training, new.reader.caching():
        if "stage1" not in training.done:
            _done(new, training, "stage1")
        finish(new, data, training, verbose)
    return new


def finish(run: Run, data: Labelled, training: Training, verbose) -> None:
    """Stage 2 and validation (each unless an earlier attempt finished it), then the run published
    in its folder. A multi-worker job's other workers keep nothing: their records go to scratch."""
    scratch = tempfile.TemporaryDirectory(prefix="tfclf-worker-") if training.shared else \
        nullcontext(str(training.work))
    task, outputs = run.config.task, run.labels.num_outputs
    with scratch as work:
        work = Path(work)
        valid = (data.valid.texts, data.y_valid) if data.valid is not None else None
        if "stage2" in training.done:
            run.reader.load(training.work / "weights", run.model, outputs)
        else:
            run.reader.fit(run.model, data.train.texts, data.y_train, valid, outputs, work, verbose,
                           class_weights=_class_weights(run, data))
            _done(run, training, "stage2")
        if "validation" in training.done:
            run.thresholds = run_folder.read_thresholds(training.work)
        else:
            run.thresholds = np.full(outputs, 0.5)
            if valid is not None:
                probs = run.probabilities(valid[0])
                run.thresholds, result = metrics.validation(task, valid[1], probs, run.labels.classes)
                result = metrics.with_fixed_thresholds(task, result, valid[1], probs, run.labels.classes)
                mistakes = MistakeTexts(task, run.thresholds)
                mistakes.add(0, valid[1], probs, valid[0])
                run_folder.record(work, "valid", result, probs, valid[1], mistakes.texts)
            if training.keeps:
                run_folder.write_thresholds(training.work, run.labels, run.thresholds)
            training.finished("validation")
        if training.keeps:
            write(run, training.work)
            for scaffold in _SCAFFOLD:
                path = training.work / scaffold
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            run.run_id = run_folder.write_run(training.work, data.fingerprint())
            run_folder.publish(training.work, training.run_dir)


def _done(run: Run, training: Training, stage: str) -> None:
    """Stage `stage` finished: its weights into the training's folder, then the mark a rerun reads."""
    if training.keeps:
        replace_folder(training.work / "weights", lambda folder: _write_weights(run, folder, stage != "stage1"))
    training.finished(stage)


def _write_weights(run: Run, folder: Path, with_reader: bool = True) -> None:
    run.model.save_weights(str(folder / "model"))
    if with_reader:
        run.reader.save(folder)


def write(run: Run, folder: Path) -> Path:
    """The model's files in `folder`: config, labels, thresholds, tokenizer, backbone config, weights."""
    return run_folder.save(folder, run.config, run.labels, run.thresholds, run.tokenizer.spec, run.backbone_config,
                           lambda weights: _write_weights(run, weights))


def save(run: Run, run_dir: Path, overwrite: bool) -> Path:
    """A trained run as the finished run in `run_dir`, replacing what is there only with
    `overwrite` (or when it is this run's own folder); the run is then that folder's."""
    run.require_trained()
    current = run_folder.run_id(run_dir)
    if not run_folder.is_run_folder(run_dir):
        raise TfclfError(f"{run_dir} is not a tfclf run folder (it holds other files): choose another folder")
    if current is not None and current != run.run_id and not overwrite:
        raise TfclfError(f"{run_dir} holds another finished run; overwrite=True replaces it")
    busy = f"{run_dir}: a tfclf training is writing this run folder; wait for it, or save elsewhere"
    with lock.exclusive(run_folder.aside(run_dir) / "train.lock", busy):
        work = run_folder.aside(run_dir) / "save"
        shutil.rmtree(work, ignore_errors=True)
        write(run, work)
        run.run_id = run_folder.write_run(work, None)
        run_folder.publish(work, run_dir)
    return run_dir


def load(run_dir, precision: str | None = None, engine: str = "tensorflow", calibration: list[str] | None = None,
         **data_settings) -> Run:
    """A trained run from a finished run folder, predicting in `precision` (one of
    runtime.precision.FOR_PREDICTION; default: the run's own setting, as runtime/precision.py's
    `for_prediction` decides it, or "int8" on OpenVINO, calibrated on `calibration` texts); on
    `engine`; `data_settings` (text column, encoding...) replace the saved ones."""
    int8 = precision == openvino.INT8
    if int8 and openvino.choose(engine, False) != "openvino":
        raise TfclfError("precision 'int8' runs on OpenVINO: engine='openvino' (pip install 'tfclf[openvino]')")
    precision = "float32" if int8 else precision  # quantized from the float32 model
    run_dir, config, labels, thresholds = run_folder.load(run_dir)
    config = dataclasses.replace(config, **data_settings)
    backbone = backbones.backbone_config(run_dir / "backbone")
    run = begin(config, backbone, backbones.tokenizer_spec(run_dir / "backbone", backbone),
                given=frozenset(config.to_json()))
    run.labels, run.thresholds = LabelSpace.from_json(labels), thresholds
    run.model = fitting.build_model(config, run.backbone_config, None, run.labels.num_outputs,
                                    built_in=precisions.for_prediction(precision or config.precision, config.task))
    prefix = run_dir / run_folder.WEIGHTS
    if legacy.is_legacy(prefix):  # written before tfclf had its own BERT layers
        legacy.load(run.model, prefix)
    else:
        run.model.load_weights(str(prefix)).expect_partial()
    run.reader.load(run_dir / "weights", run.model, run.labels.num_outputs)
    run.run_id = run_folder.run_id(run_dir)
    if openvino.choose(engine, run.reader.two_stages) == "openvino":
        run.engine_model = _on_openvino(run, run_dir, int8, calibration)
    return run


def _on_openvino(run: Run, run_dir: Path, int8: bool, calibration: list[str] | None):
    """The run's model on OpenVINO, its conversion kept in the run folder: per run, precision and,
    for int8, the calibration texts (a hash of them)."""
    import hashlib

    from tfclf.text.sequences import sorted_batches, token_ids

    key = f"{run_folder.safe_name(str(run.run_id))}-{'int8' if int8 else run.model.precision}"
    batches = None
    if int8 and calibration:
        key += "-" + hashlib.sha256("\0".join(map(str, calibration)).encode()).hexdigest()[:12]
        ids = token_ids(run.tokenizer, inputs.as_texts(list(calibration)))  # (text, pair) tuples too
        batches = [batch for _, batch in sorted_batches(ids, 2 * run.config.batch_size, run.tokenizer.pad_id)]
    return openvino.OpenVINOModel(run.model, openvino.INT8 if int8 else run.model.precision,
                                  run_dir / "openvino" / key, batches)


def _identity(data: Labelled) -> dict:
    return {"labels": data.labels.to_json(), "data": data.fingerprint()}


def _class_weights(run: Run, data: Labelled) -> np.ndarray | None:
    """--class-weight balanced, from the documents' labels (not their chunks': a long document
    counts once), for every stage of the run."""
    return tasks.balanced_weights(run.config.task, data.y_train) if run.config.class_weight == "balanced" else None


def _history(path: Path) -> dict:
    """Keras's history dict from history.csv (a resumed run that skips stage 1)."""
    rows = run_folder.read_history(path)
    return {k: [r[k] for r in rows if k in r] for k in dict.fromkeys(k for r in rows for k in r if k != "epoch")}
