"""TextClassifier: fit, evaluate, predict, save and load, in the manner of scikit-learn.

    clf = TextClassifier.from_pretrained("minilm-l6", task="multilabel")
    clf.fit("train.csv", valid="dev.csv", run_dir="runs/goemotions")
    clf.evaluate("test.csv")
    clf.predict(["what a day!"])
    TextClassifier.load("runs/goemotions")
"""
from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras as keras

from tfclf import backbones, metrics, training
from tfclf.config import RunConfig
from tfclf.data import Examples, LabelSpace, load_examples, train_valid_split
from tfclf.errors import TfclfError
from tfclf.io import atomic_path, atomic_write_json, read_json
from tfclf.report import safe_name
from tfclf.models import build_classifier, build_text_model, loss_for, probabilities
from tfclf.tokenization import TokenizerSpec, WordPieceTokenizer

Data = Union[str, Path, pd.DataFrame, Sequence[str]]
_WEIGHTS = "weights/model"


class TextClassifier:
    """A fine-tuned BERT-family text classifier and everything needed to use it again."""

    def __init__(self, config: RunConfig, backbone_config, tokenizer_spec: TokenizerSpec,
                 checkpoint: Path | None = None):
        self.config = config
        self.backbone_config = backbone_config
        self.tokenizer = WordPieceTokenizer(tokenizer_spec, config.max_length, config.truncation)
        self.checkpoint = checkpoint  # pretrained weights to start from; None once trained
        self.labels: LabelSpace | None = None
        self.thresholds: np.ndarray | None = None
        self.model: keras.Model | None = None  # token ids -> logits
        self.history: dict = {}
        self._lock = threading.Lock()
        self._forward_fn = None

    # ----------------------------------------------------------------- creation
    @classmethod
    def from_pretrained(cls, model: str = "minilm-l6", task: str = "multiclass", **settings) -> "TextClassifier":
        """Start from a checkpoint: an alias (minilm-l6), a local folder or a Hugging Face Hub name."""
        config = RunConfig(model=model, task=task, **settings)
        path = backbones.resolve_checkpoint(model)
        return cls(config, backbones.backbone_config(path), TokenizerSpec.from_directory(path), path)

    # ----------------------------------------------------------------- data
    def examples(self, data: Data, labels: Sequence | None = None, *, with_labels: bool = True) -> Examples:
        """Validated examples from a file, a DataFrame, or a list of texts (with `labels`)."""
        if isinstance(data, Examples):
            return data
        if isinstance(data, pd.DataFrame) or isinstance(data, (str, Path)) and labels is None:
            return load_examples(data, self.config.columns, task=self.config.task, with_labels=with_labels,
                                 drop_empty=self.config.drop_empty, encoding=self.config.encoding)
        texts = list(data)
        frame = pd.DataFrame({"text": texts})
        if labels is not None:
            frame["labels"] = [list(v) if isinstance(v, (list, tuple, set)) else v for v in labels]
        columns = dataclasses.replace(self.config.columns, text="text", label="labels", label_columns=())
        return load_examples(frame, columns, task=self.config.task, with_labels=labels is not None,
                             drop_empty=self.config.drop_empty)

    # ----------------------------------------------------------------- training
    def fit(self, train: Data, labels: Sequence | None = None, *, valid: Data | None = None,
            valid_labels: Sequence | None = None, run_dir: str | Path | None = None,
            verbose: int | str = "auto") -> "TextClassifier":
        """Fine-tune on `train`; early stopping, best weights and thresholds use `valid`."""
        cfg = self.config
        keras.utils.set_random_seed(cfg.seed)
        train_set = self.examples(train, labels)
        valid_set = self.examples(valid, valid_labels) if valid is not None else None
        if valid_set is None and cfg.valid_fraction > 0:
            train_set, valid_set = train_valid_split(train_set, cfg.valid_fraction, cfg.seed)
        self.labels = LabelSpace.fit(train_set, cfg.task)
        y_train = self.labels.encode(train_set)
        y_valid = self.labels.encode(valid_set) if valid_set is not None else None

        work = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="tfclf-"))
        resume = self._prepare_run_folder(work)
        strategy = training.make_strategy(cfg.strategy)
        steps = training.count_batches(len(train_set), cfg.batch_size) * cfg.epochs
        with strategy.scope():  # variables (weights and optimizer slots) live where the strategy puts them
            self.model = self._build(pretrained=True)
            self.model.compile(
                optimizer=training.make_optimizer(cfg.learning_rate, steps, cfg.warmup_fraction,
                                                  cfg.weight_decay, cfg.clipnorm),
                loss=loss_for(cfg.task), metrics=[training.monitored_metric(cfg.task)])

        train_data = training.training_dataset(training.token_ids(self.tokenizer, train_set.texts), y_train,
                                               cfg.batch_size, self.tokenizer.pad_id, cfg.seed)
        valid_data = None
        if valid_set is not None:
            valid_data = training.shard_by_data(training.inference_batches(
                training.token_ids(self.tokenizer, valid_set.texts), cfg.batch_size, self.tokenizer.pad_id, y_valid))
        monitor = "val_" + training.monitored_metric(cfg.task).name
        history = self.model.fit(training.shard_by_data(train_data), validation_data=valid_data, epochs=cfg.epochs,
                                 verbose=verbose, callbacks=training.callbacks(work, monitor, cfg.patience,
                                                                               valid_set is not None, resume))
        self.history = history.history
        if (work / "checkpoints" / "best.index").exists():  # the best epoch, not the last one
            self.model.load_weights(str(work / "checkpoints" / "best")).expect_partial()

        self.thresholds = np.full(self.labels.num_outputs, 0.5)
        if valid_set is not None:
            probs = self.predict_proba(valid_set.texts)
            if cfg.task == "multilabel":
                self.thresholds = metrics.tune_thresholds(y_valid, probs)
            self._record(work, "valid", metrics.evaluate(cfg.task, y_valid, probs, self.labels.classes,
                                                         self.thresholds), probs, y_valid)
        self.checkpoint = None
        if run_dir:
            self.save(work)
            shutil.rmtree(work / "backup", ignore_errors=True)  # finished: a rerun starts afresh
        else:
            shutil.rmtree(work, ignore_errors=True)
        return self

    def _prepare_run_folder(self, work: Path) -> bool:
        """Resume when `work` holds the backup of an unfinished run with the same settings;
        otherwise start clean. Returns whether this run resumes."""
        work.mkdir(parents=True, exist_ok=True)
        if (work / "backup").is_dir() and (work / "config.json").is_file():
            if RunConfig.load(work / "config.json") != self.config:
                raise TfclfError(f"{work} holds an unfinished run with other settings; use another --out, "
                                 f"or delete {work / 'backup'} to start over")
            print(f"tfclf: resuming the unfinished run in {work}", file=sys.stderr)
            return True
        for stale in ("metrics.json", "history.csv", "report.md"):  # a new run in an old folder starts clean
            (work / stale).unlink(missing_ok=True)
        for folder in ("checkpoints", "backup", "predictions", "plots"):
            shutil.rmtree(work / folder, ignore_errors=True)
        self.config.save(work / "config.json")
        return False

    def _build(self, pretrained: bool) -> keras.Model:
        backbone = backbones.build_backbone(self.backbone_config, self.checkpoint if pretrained else None)
        return build_classifier(backbone, self.labels.num_outputs, dropout=self.config.dropout,
                                pooling=self.config.pooling)

    def _record(self, run_dir: Path, name: str, result: dict, probs: np.ndarray, targets: np.ndarray) -> None:
        """Merge `result` into metrics.json; for multi-label also the figures at a fixed 0.5."""
        if self.config.task == "multilabel":
            fixed = metrics.evaluate("multilabel", targets, probs, self.labels.classes, None)
            result["at_0.5"] = {k: v for k, v in fixed.items() if k != "per_label"}
        path = run_dir / "metrics.json"
        recorded = read_json(path) if path.exists() else {}
        recorded[name] = result
        atomic_write_json(path, recorded)
        # the probabilities behind the figures, for `tfclf report`'s plots
        with atomic_path(run_dir / "predictions" / f"{safe_name(name)}.npz") as tmp:
            np.savez_compressed(tmp, probabilities=probs, targets=targets)

    # ----------------------------------------------------------------- inference
    def _require_model(self) -> None:
        if self.model is None or self.labels is None:
            raise TfclfError("this classifier is not trained yet: call fit, or load a run folder")

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None,
                      progress: bool = False) -> np.ndarray:
        """Probabilities, one row per text: softmax over classes, or a sigmoid per label.

        Safe to call from several threads at once."""
        self._require_model()
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        logits = np.zeros((len(texts), self.labels.num_outputs), np.float32)
        ids = training.token_ids(self.tokenizer, texts)
        batch_size = batch_size or 2 * self.config.batch_size
        batches = training.sorted_batches(ids, batch_size, self.tokenizer.pad_id)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=-(-len(ids) // batch_size), desc="predicting", unit="batch",
                           file=sys.stderr)
        forward = self._forward()
        for index, batch in batches:
            logits[index] = forward(batch["input_ids"], batch["attention_mask"]).numpy()
        return probabilities(logits, self.config.task).numpy()

    def _forward(self):
        """The model as one tf.function on (ids, mask) of any shape: traced once, thread-safe."""
        with self._lock:
            if self._forward_fn is None or self._forward_fn[0] is not self.model:
                model = self.model
                spec = tf.TensorSpec([None, None], tf.int32)
                fn = tf.function(lambda ids, mask: model({"input_ids": ids, "attention_mask": mask},
                                                         training=False), input_signature=[spec, spec])
                self._forward_fn = (model, fn)
            return self._forward_fn[1]

    def predict(self, texts: Sequence[str], batch_size: int | None = None) -> list:
        """Label names: one per text, or a list per text for multi-label (over each label's threshold)."""
        return self.decide(self.predict_proba(texts, batch_size))

    def decide(self, probs: np.ndarray) -> list:
        """Label names from probabilities, with this run's thresholds."""
        decided = metrics.decide(self.config.task, probs, self.thresholds)
        classes = self.labels.classes
        if self.config.task == "multilabel":
            return [[classes[j] for j in np.flatnonzero(row)] for row in decided]
        return [classes[i] for i in decided]

    def evaluate(self, data: Data, labels: Sequence | None = None, run_dir: str | Path | None = None,
                 name: str | None = None, progress: bool = False) -> dict:
        """The task's metrics on labelled data, with the run's thresholds; recorded when `run_dir` is given."""
        self._require_model()
        examples = self.examples(data, labels)
        targets = self.labels.encode(examples)
        probs = self.predict_proba(examples.texts, progress=progress)
        result = metrics.evaluate(self.config.task, targets, probs, self.labels.classes, self.thresholds)
        if run_dir is not None:
            self._record(Path(run_dir), name or examples.source, result, probs, targets)
        return result

    def text_model(self, with_probabilities: bool = True) -> keras.Model:
        """A Keras model on raw strings: tokenization in the graph, then this classifier."""
        self._require_model()
        return build_text_model(self.tokenizer, self.model, self.config.task if with_probabilities else None)

    # ----------------------------------------------------------------- persistence
    def save(self, run_dir: str | Path) -> Path:
        """Write config, labels, thresholds, tokenizer, backbone config and weights into `run_dir`."""
        self._require_model()
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.config.save(run_dir / "config.json")
        atomic_write_json(run_dir / "labels.json", self.labels.to_json())
        # one threshold per output unit: per label, or for the positive class of a binary task
        thresholded = self.labels.classes[-self.labels.num_outputs:]
        atomic_write_json(run_dir / "thresholds.json", dict(zip(thresholded, map(float, self.thresholds))))

        def write_backbone(folder: Path) -> None:
            self.tokenizer.spec.save(folder)
            self.backbone_config.save_pretrained(str(folder))

        _replace_folder(run_dir / "backbone", write_backbone)
        _replace_folder(run_dir / "weights", lambda tmp: self.model.save_weights(str(tmp / "model")))
        return run_dir

    @classmethod
    def load(cls, run_dir: str | Path) -> "TextClassifier":
        """A trained classifier from a run folder written by `save` (or `tfclf train`)."""
        run_dir = Path(run_dir)
        if not (run_dir / "weights" / "model.index").exists():
            raise TfclfError(f"{run_dir}: not a finished tfclf run folder (no weights/model); "
                             "train with tfclf train --out")
        config = RunConfig.from_run(run_dir)
        clf = cls(config, backbones.backbone_config(run_dir / "backbone"),
                  TokenizerSpec.from_directory(run_dir / "backbone"))
        clf.labels = LabelSpace.from_json(read_json(run_dir / "labels.json"))
        thresholds = read_json(run_dir / "thresholds.json")
        clf.thresholds = np.array([float(v) for v in thresholds.values()])
        clf.model = clf._build(pretrained=False)
        clf.model.load_weights(str(run_dir / _WEIGHTS)).expect_partial()
        return clf


def _replace_folder(target: Path, write) -> None:
    """Write a folder next to `target`, then swap it in: readers never see half of one."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        write(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
