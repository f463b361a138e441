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

from tfclf import backbones, metrics, precision, training
from tfclf.config import RunConfig
from tfclf.data import Examples, LabelSpace, load_examples, train_valid_split
from tfclf.errors import TfclfError
from tfclf.io import atomic_path, atomic_write_json, predicting_bar, read_json
from tfclf.report import safe_name
from tfclf.run_folder import WEIGHTS, replace_folder, require_finished
from tfclf.settings import check_positions
from tfclf.hierarchical import HierarchicalText, build_document_classifier, chunk_encoder, group_by_document
from tfclf.models import build_classifier, build_text_model, loss_for, on_text, probabilities
from tfclf.tokenization import TokenizerSpec, WordPieceTokenizer

Data = Union[str, Path, pd.DataFrame, Sequence[str]]


class TextClassifier:
    """A fine-tuned BERT-family text classifier and everything needed to use it again."""

    def __init__(self, config: RunConfig, backbone_config, tokenizer_spec: TokenizerSpec,
                 checkpoint: Path | None = None):
        self.config = config
        self.backbone_config = backbone_config
        self.tokenizer = WordPieceTokenizer(tokenizer_spec, config.max_length, config.truncation,
                                            config.chunk_stride, config.max_chunks)
        self.checkpoint = checkpoint  # pretrained weights every fit starts from (None: resolve config.model)
        self.labels: LabelSpace | None = None
        self.thresholds: np.ndarray | None = None
        self.model: keras.Model | None = None  # token ids -> logits
        self.history: dict = {}
        self.doc_model: keras.Model | None = None  # hierarchical runs: chunk embeddings -> logits
        self._lock = threading.Lock()
        self._traced_fns: dict = {}
        self._encoder_of = None
        self._features: dict = {}  # a few recent chunk_features results: texts -> (encoder, features)

    # ----------------------------------------------------------------- creation
    @classmethod
    def from_pretrained(cls, model: str = "minilm-l6", task: str = "multiclass", **settings) -> "TextClassifier":
        """Start from a checkpoint: an alias (minilm-l6), a local folder or a Hugging Face Hub name."""
        config = RunConfig(model=model, task=task, **settings)
        path = backbones.resolve_checkpoint(model)
        backbone_config = backbones.backbone_config(path)
        check_positions(config.max_length, getattr(backbone_config, "max_position_embeddings", None), model)
        return cls(config, backbone_config, TokenizerSpec.from_directory(path), path)

    # ----------------------------------------------------------------- data
    def examples(self, data: Data, labels: Sequence | None = None, *, with_labels: bool = True) -> Examples:
        """Validated examples from a file, a DataFrame, or a list of texts (with `labels`)."""
        if isinstance(data, Examples):
            return data
        if isinstance(data, (pd.DataFrame, str, Path)):
            if labels is not None:
                raise TfclfError("labels given beside a file or DataFrame: a string names a file, whose labels are in "
                                 f"a column (label_column, default {self.config.columns.label!r}); to fit on texts, "
                                 "pass the texts as a list")
            return load_examples(data, self.config.columns, task=self.config.task, with_labels=with_labels,
                                 drop_empty=self.config.drop_empty, encoding=self.config.encoding)
        texts = as_texts(data)
        if with_labels and labels is None:
            raise TfclfError("texts without labels: pass labels=[...] beside the texts, or a file with a label column")
        if labels is not None and len(labels) != len(texts):
            raise TfclfError(f"{len(texts)} texts but {len(labels)} labels: one label (or list of labels) per text")
        frame = pd.DataFrame({"text": texts})
        if labels is not None:
            frame["labels"] = [list(v) if isinstance(v, (list, tuple, set)) else v for v in labels]
        columns = dataclasses.replace(self.config.columns, text="text", label="labels", label_columns=())
        return load_examples(frame, columns, task=self.config.task, with_labels=labels is not None,
                             drop_empty=self.config.drop_empty)

    # ----------------------------------------------------------------- training
    def fit(self, train: Data, labels: Sequence | None = None, *, valid: Data | None = None,
            valid_labels: Sequence | None = None, run_dir: str | Path | None = None,
            verbose: int | str = "auto", warm_start: bool = False) -> "TextClassifier":
        """Fine-tune on `train`; early stopping, best weights and thresholds use `valid`.

        Every fit starts from the pretrained checkpoint, as in scikit-learn, on a fresh object, a
        fitted one or one loaded from a run folder. `warm_start=True` continues from the current
        weights instead (the labels must be the ones it was trained on)."""
        cfg = self.config
        precision.require(cfg.precision)
        if warm_start and self.model is None:
            raise TfclfError("warm_start=True continues a trained model: fit or load one first")
        keras.utils.set_random_seed(cfg.seed)
        train_set, valid_set = self._split(train, labels, valid, valid_labels)
        fitted = LabelSpace.fit(train_set, cfg.task)
        if warm_start and fitted.classes != self.labels.classes:
            raise TfclfError(f"warm_start=True needs the labels the model was trained on ({', '.join(self.labels.classes)}), "
                             f"got {', '.join(fitted.classes)}")
        self.labels = fitted
        y_train = self.labels.encode(train_set)
        y_valid = self.labels.encode(valid_set) if valid_set is not None else None

        work = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="tfclf-"))
        resume = self._prepare_run_folder(work)
        if cfg.hierarchical:  # stage 1 learns from chunks, each with its document's labels
            train_ids, train_doc, _ = training.chunk_token_ids(self.tokenizer, train_set.texts)
            y_fit = y_train[train_doc]
            valid_fit = None
            if valid_set is not None:
                valid_ids, valid_doc, _ = training.chunk_token_ids(self.tokenizer, valid_set.texts)
                valid_fit = (valid_ids, y_valid[valid_doc])
        else:
            train_ids, y_fit = training.token_ids(self.tokenizer, train_set.texts), y_train
            valid_fit = (training.token_ids(self.tokenizer, valid_set.texts), y_valid) if valid_set is not None else None
        self._fit_sequences(train_ids, y_fit, valid_fit, work, resume, verbose, warm_start)
        if cfg.hierarchical:
            self._fit_documents(train_set.texts, y_train, valid_set.texts if valid_set else None, y_valid,
                                work, verbose)

        self._finish(work, valid_set, y_valid, keep=bool(run_dir))
        return self

    def fit_documents(self, train: Data, labels: Sequence | None = None, *, valid: Data | None = None,
                      valid_labels: Sequence | None = None, doc_pooling: str | None = None,
                      run_dir: str | Path | None = None, verbose: int | str = "auto") -> "TextClassifier":
        """Hierarchical runs: train stage 2 again (say with another `doc_pooling`) on the fine-tuned
        stage 1, which is kept as it is. Pass the data `fit` had; a new `run_dir` gets the result."""
        self._require_model()
        if not self.config.hierarchical:
            raise TfclfError("fit_documents needs a hierarchical run (long_doc='hierarchical')")
        self.config = dataclasses.replace(self.config, doc_pooling=doc_pooling or self.config.doc_pooling)
        train_set, valid_set = self._split(train, labels, valid, valid_labels)
        y_valid = self.labels.encode(valid_set) if valid_set is not None else None
        work = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="tfclf-"))
        self._prepare_run_folder(work)
        self._fit_documents(train_set.texts, self.labels.encode(train_set), valid_set.texts if valid_set else None,
                            y_valid, work, verbose)
        self._finish(work, valid_set, y_valid, keep=bool(run_dir))
        return self

    def _split(self, train: Data, labels, valid: Data | None, valid_labels) -> tuple[Examples, Examples | None]:
        """Training and validation examples; without `valid`, the seeded valid_fraction of `train`."""
        train_set = self.examples(train, labels)
        valid_set = self.examples(valid, valid_labels) if valid is not None else None
        if valid_set is None and self.config.valid_fraction > 0:
            train_set, valid_set = train_valid_split(train_set, self.config.valid_fraction, self.config.seed)
        return train_set, valid_set

    def _finish(self, work: Path, valid_set: Examples | None, y_valid: np.ndarray | None, keep: bool) -> None:
        """Thresholds and validation metrics, then the run folder saved (or the temporary one removed)."""
        self.thresholds = np.full(self.labels.num_outputs, 0.5)
        if valid_set is not None:
            probs = self.predict_proba(valid_set.texts)
            chose = ["the best epoch"]
            if self.config.task == "multilabel":
                self.thresholds = metrics.tune_thresholds(y_valid, probs)
                chose.append("the thresholds")
            result = metrics.evaluate(self.config.task, y_valid, probs, self.labels.classes, self.thresholds)
            # figures on the set that chose them flatter the model: say so wherever they are read
            result["in_sample"] = f"this set chose {' and '.join(chose)}: evaluate on held-out data for a fair figure"
            self._record(work, "valid", result, probs, y_valid)
        if keep:
            self.save(work)
            shutil.rmtree(work / "backup", ignore_errors=True)  # finished: a rerun starts afresh
        else:
            shutil.rmtree(work, ignore_errors=True)

    def _fit_sequences(self, ids: list[np.ndarray], targets: np.ndarray, valid: tuple | None, work: Path,
                       resume: bool, verbose, warm_start: bool = False) -> None:
        """Fine-tune the backbone and head on token-id sequences (texts, or chunks of documents);
        the best epoch's weights on `valid` are kept."""
        cfg = self.config
        self._features.clear()  # chunk embeddings of the previous weights
        strategy = training.make_strategy(cfg.strategy)
        steps = training.count_batches(len(ids), cfg.batch_size) * cfg.epochs
        weights = training.balanced_weights(cfg.task, targets) if cfg.class_weight == "balanced" else None
        with strategy.scope():  # variables (weights and optimizer slots) live where the strategy puts them
            previous = self.model if warm_start else None
            self.model = self._build(pretrained=previous is None)
            if previous is not None:
                self.model.set_weights(previous.get_weights())
            self.model.compile(
                optimizer=training.make_optimizer(cfg.learning_rate, steps, cfg.warmup_fraction,
                                                  cfg.weight_decay, cfg.clipnorm, self._lr_multiplier()),
                loss=loss_for(cfg.task, weights), metrics=[training.monitored_metric(cfg.task)], jit_compile=cfg.xla)
        pad = self.tokenizer.pad_id
        train_data = training.training_dataset(ids, targets, cfg.batch_size, pad, cfg.seed)
        valid_data = training.shard_by_data(training.inference_batches(valid[0], cfg.batch_size, pad, valid[1])) \
            if valid is not None else None
        monitor = "val_" + training.monitored_metric(cfg.task).name
        with precision.while_training(cfg.precision):
            history = self.model.fit(training.shard_by_data(train_data), validation_data=valid_data,
                                     epochs=cfg.epochs, verbose=verbose,
                                     callbacks=training.callbacks(work, monitor, cfg.patience, valid is not None,
                                                                  resume))
        self.history = history.history
        if (work / "checkpoints" / "best.index").exists():  # the best epoch, not the last one
            self.model.load_weights(str(work / "checkpoints" / "best")).expect_partial()

    def _lr_multiplier(self):
        """Layer-wise learning rates when --layer-decay or --head-lr ask for them, else None."""
        cfg = self.config
        if cfg.layer_decay == 1.0 and cfg.head_learning_rate is None:
            return None
        layers = getattr(self.backbone_config, "num_hidden_layers", None) or self.backbone_config.n_layers
        head = (cfg.head_learning_rate or cfg.learning_rate) / cfg.learning_rate
        return training.layerwise_multiplier(layers, cfg.layer_decay, head)

    def _fit_documents(self, texts: list[str], targets: np.ndarray, valid_texts: list[str] | None,
                       valid_targets: np.ndarray | None, work: Path, verbose) -> None:
        """Stage 2 of the hierarchical model: the fine-tuned chunk embeddings of each document,
        through the document classifier (LSTM, mean, max or attention)."""
        cfg = self.config
        inputs = self.chunk_features(texts)
        valid = (self.chunk_features(valid_texts), valid_targets) if valid_texts is not None else None
        keras.utils.set_random_seed(cfg.seed)
        self.doc_model = build_document_classifier(inputs["chunk_embeddings"].shape[-1], self.labels.num_outputs,
                                                   cfg.doc_pooling, cfg.dropout)
        metric = training.monitored_metric(cfg.task)
        self.doc_model.compile(optimizer=keras.optimizers.Adam(cfg.doc_learning_rate), loss=loss_for(cfg.task),
                               metrics=[metric])
        best = work / "checkpoints" / "document_best"
        found = [training.HistoryCSV(work / "document_history.csv")]
        if valid is not None:
            found += [keras.callbacks.ModelCheckpoint(str(best), monitor="val_" + metric.name, mode="max",
                                                      save_best_only=True, save_weights_only=True),
                      keras.callbacks.EarlyStopping(monitor="val_" + metric.name, mode="max",
                                                    patience=max(cfg.patience, 5))]
        self.doc_model.fit(inputs, targets, batch_size=cfg.batch_size, epochs=cfg.doc_epochs, validation_data=valid,
                           callbacks=found, verbose=verbose)
        if valid is not None:
            self.doc_model.load_weights(str(best)).expect_partial()

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
        """The classifier in the run's precision. Keras reads its dtype policy when a layer is
        created, so the global policy is set only while this model is built."""
        precision.enable_for_prediction(self.config.precision)  # process-wide: Grappler options cannot be scoped
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(precision.POLICIES[self.config.precision])
        try:
            start = (self.checkpoint or backbones.resolve_checkpoint(self.config.model)) if pretrained else None
            backbone = backbones.build_backbone(self.backbone_config, start)
            return build_classifier(backbone, self.labels.num_outputs, dropout=self.config.dropout,
                                    pooling=self.config.pooling)
        finally:
            keras.mixed_precision.set_global_policy(previous)

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
        if self.model is None or self.labels is None or self.config.hierarchical and self.doc_model is None:
            raise TfclfError("this classifier is not trained yet: call fit, or load a run folder")

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None,
                      progress: bool = False) -> np.ndarray:
        """Probabilities, one row per text: softmax over classes, or a sigmoid per label.

        Safe to call from several threads at once."""
        self._require_model()
        texts = as_texts(texts)
        if self.config.hierarchical:
            grouped = self.chunk_features(texts, batch_size, progress)
            forward = self._traced(self.doc_model, {"chunk_embeddings": tf.TensorSpec([None, None, None], tf.float32),
                                                    "chunk_mask": tf.TensorSpec([None, None], tf.int32)})
            step = 256  # documents per call: the LSTM runs over [docs, chunks, hidden]
            logits = np.concatenate([forward({k: v[i:i + step] for k, v in grouped.items()}).numpy()
                                     for i in range(0, len(texts), step)] or
                                    [np.zeros((0, self.labels.num_outputs), np.float32)])
        else:
            ids = training.token_ids(self.tokenizer, texts)
            logits = self._run_sequences(self.model, ids, self.labels.num_outputs, batch_size, progress)
        return probabilities(logits, self.config.task).numpy()

    def chunk_features(self, texts: Sequence[str], batch_size: int | None = None,
                       progress: bool = False) -> dict[str, np.ndarray]:
        """Hierarchical runs: each document's chunk embeddings from the fine-tuned stage 1,
        {"chunk_embeddings": [docs, chunks, hidden], "chunk_mask": [docs, chunks]}."""
        encoder = self._encoder()
        key = tuple(texts)  # stage 2 retrained on the same documents reuses them
        with self._lock:  # the texts themselves are the key (equal, not merely of equal hash)
            found = self._features.get(key)
        if found is not None and found[0] is encoder:  # and the same stage 1 computed them
            return found[1]
        ids, doc_index, position = training.chunk_token_ids(self.tokenizer, list(key))
        features = self._run_sequences(encoder, ids, encoder.output_shape[-1], batch_size, progress)
        grouped = group_by_document(features, doc_index, position, len(key))
        with self._lock:
            self._features.pop(key, None)
            while len(self._features) >= 3:
                self._features.pop(next(iter(self._features)))
            self._features[key] = (encoder, grouped)
        return grouped

    def _encoder(self) -> keras.Model:
        with self._lock:
            if self._encoder_of is None or self._encoder_of[0] is not self.model:
                self._encoder_of = (self.model, chunk_encoder(self.model))
            return self._encoder_of[1]

    def _run_sequences(self, model: keras.Model, ids: list[np.ndarray], width: int, batch_size: int | None,
                       progress: bool) -> np.ndarray:
        """`model` over token-id sequences in length-sorted batches; rows back in input order."""
        out = np.zeros((len(ids), width), np.float32)
        batch_size = batch_size or 2 * self.config.batch_size
        batches = predicting_bar(training.sorted_batches(ids, batch_size, self.tokenizer.pad_id),
                                 total=-(-len(ids) // batch_size), show=progress)
        spec = tf.TensorSpec([None, None], tf.int32)
        forward = self._traced(model, {"input_ids": spec, "attention_mask": spec})
        for index, batch in batches:
            out[index] = forward(batch).numpy()
        return out

    def _traced(self, model: keras.Model, spec: dict):
        """`model` as one tf.function on inputs of any batch and length: traced once, thread-safe."""
        with self._lock:
            found = self._traced_fns.get(id(model))
            if found is None or found[0] is not model:
                found = (model, tf.function(lambda inputs: model(inputs, training=False), input_signature=[spec],
                                            jit_compile=self.config.xla or None))
                self._traced_fns[id(model)] = found
            return found[1]

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
        task = self.config.task if with_probabilities else None
        if self.config.hierarchical:
            return on_text(HierarchicalText(self.tokenizer, self._encoder(), self.doc_model, name="hierarchical"), task)
        return build_text_model(self.tokenizer, self.model, task)

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

        replace_folder(run_dir / "backbone", write_backbone)

        def write_weights(folder: Path) -> None:
            self.model.save_weights(str(folder / "model"))
            if self.doc_model is not None:
                self.doc_model.save_weights(str(folder / "document"))

        replace_folder(run_dir / "weights", write_weights)
        return run_dir

    @classmethod
    def load(cls, run_dir: str | Path) -> "TextClassifier":
        """A trained classifier from a run folder written by `save` (or `tfclf train`)."""
        run_dir = require_finished(run_dir)
        config = RunConfig.from_run(run_dir)
        clf = cls(config, backbones.backbone_config(run_dir / "backbone"),
                  TokenizerSpec.from_directory(run_dir / "backbone"))
        clf.labels = LabelSpace.from_json(read_json(run_dir / "labels.json"))
        thresholds = read_json(run_dir / "thresholds.json")
        clf.thresholds = np.array([float(v) for v in thresholds.values()])
        clf.model = clf._build(pretrained=False)
        clf.model.load_weights(str(run_dir / WEIGHTS)).expect_partial()
        if config.hierarchical:
            clf.doc_model = build_document_classifier(clf._encoder().output_shape[-1], clf.labels.num_outputs,
                                                      config.doc_pooling, config.dropout)
            clf.doc_model.load_weights(str(run_dir / "weights" / "document")).expect_partial()
        return clf


def as_texts(texts) -> list[str]:
    """A list of texts from any iterable of them; one string is refused, as scikit-learn does,
    since iterating it would make one text of every character."""
    if isinstance(texts, (str, bytes)):
        raise TfclfError("an iterable of texts expected, one string received: wrap a single text in a list, "
                         "[text]")
    return [t if isinstance(t, str) else str(t) for t in texts]
