"""TextClassifier: fit, evaluate, predict, save and load, in the manner of scikit-learn.

    clf = TextClassifier.from_pretrained("minilm-l6", task="multilabel")
    clf.fit("train.csv", valid="dev.csv", run_dir="runs/goemotions")
    clf.evaluate("test.csv")
    clf.predict(["what a day!"])
    TextClassifier.load("runs/goemotions")

A thin facade: inputs.py checks the data, trainer.py builds and trains, predictor.py runs the
model, run_folder.py writes and reads the run folder.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import tf_keras as keras

from tfclf import backbones, inputs, metrics, precision, run_folder, trainer, training
from tfclf.config import RunConfig
from tfclf.data import LabelSpace
from tfclf.errors import TfclfError
from tfclf.hierarchical import HierarchicalText, build_document_classifier
from tfclf.inputs import Data
from tfclf.io import atomic_write_json, read_json
from tfclf.models import build_text_model, on_text, probabilities
from tfclf.predictor import Predictor
from tfclf.settings import check_positions
from tfclf.tokenization import TokenizerSpec, WordPieceTokenizer


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
        self.doc_model: keras.Model | None = None  # hierarchical runs: chunk embeddings -> logits
        self.history: dict = {}
        self.predictor = Predictor(self.tokenizer, config.batch_size, config.xla)

    @classmethod
    def from_pretrained(cls, model: str = "minilm-l6", task: str = "multiclass", **settings) -> "TextClassifier":
        """Start from a checkpoint: an alias (minilm-l6), a local folder or a Hugging Face Hub name."""
        config = RunConfig(model=model, task=task, **settings)
        path = backbones.resolve_checkpoint(model)
        backbone_config = backbones.backbone_config(path)
        check_positions(config.max_length, getattr(backbone_config, "max_position_embeddings", None), model)
        return cls(config, backbone_config, TokenizerSpec.from_directory(path), path)

    def examples(self, data: Data, labels: Sequence | None = None, *, with_labels: bool = True):
        """Validated examples from a file, a DataFrame, or a list of texts (with `labels`)."""
        return inputs.examples(data, labels, self.config, with_labels)

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
        train_set, valid_set = inputs.split(train, labels, valid, valid_labels, cfg)
        fitted = LabelSpace.fit(train_set, cfg.task)
        if warm_start and fitted.classes != self.labels.classes:
            raise TfclfError(f"warm_start=True needs the labels the model was trained on "
                             f"({', '.join(self.labels.classes)}), got {', '.join(fitted.classes)}")
        self.labels = fitted
        y_train = self.labels.encode(train_set)
        y_valid = self.labels.encode(valid_set) if valid_set is not None else None
        work = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="tfclf-"))
        resume = run_folder.prepare(work, cfg)
        train_ids, y_fit = self._sequences(train_set.texts, y_train)
        valid_fit = self._sequences(valid_set.texts, y_valid) if valid_set is not None else None
        previous = self.model if warm_start else None

        def build() -> keras.Model:
            model = trainer.build_model(cfg, self.backbone_config, None if previous else self._pretrained(),
                                        self.labels.num_outputs)
            if previous is not None:
                model.set_weights(previous.get_weights())
            return model

        self.predictor.forget_features()  # chunk embeddings of the previous weights
        self.model, self.history = trainer.train_sequences(
            build, cfg, trainer.lr_multiplier(cfg, self.backbone_config), train_ids, y_fit, valid_fit,
            self.tokenizer.pad_id, work, resume, verbose)
        if cfg.hierarchical:
            self._fit_documents(train_set.texts, y_train, valid_set, y_valid, work, verbose)
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
        train_set, valid_set = inputs.split(train, labels, valid, valid_labels, self.config)
        y_valid = self.labels.encode(valid_set) if valid_set is not None else None
        work = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="tfclf-"))
        run_folder.prepare(work, self.config)
        self._fit_documents(train_set.texts, self.labels.encode(train_set), valid_set, y_valid, work, verbose)
        self._finish(work, valid_set, y_valid, keep=bool(run_dir))
        return self

    def _fit_documents(self, texts, targets, valid_set, y_valid, work: Path, verbose) -> None:
        valid = (self.chunk_features(valid_set.texts), y_valid) if valid_set is not None else None
        self.doc_model = trainer.train_documents(self.config, self.chunk_features(texts), targets, valid,
                                                 self.labels.num_outputs, work, verbose)

    def _sequences(self, texts: list[str], targets: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """What stage 1 learns from: token ids of each text, or of each chunk with its document's targets."""
        if not self.config.hierarchical:
            return training.token_ids(self.tokenizer, texts), targets
        ids, doc_index, _ = training.chunk_token_ids(self.tokenizer, texts)
        return ids, targets[doc_index]

    def _pretrained(self) -> Path:
        return self.checkpoint or backbones.resolve_checkpoint(self.config.model)

    def _finish(self, work: Path, valid_set, y_valid: np.ndarray | None, keep: bool) -> None:
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

    def _record(self, run_dir: Path, name: str, result: dict, probs: np.ndarray, targets: np.ndarray) -> None:
        if self.config.task == "multilabel":  # the figures at a fixed 0.5 beside the tuned ones
            fixed = metrics.evaluate("multilabel", targets, probs, self.labels.classes, None)
            result["at_0.5"] = {k: v for k, v in fixed.items() if k != "per_label"}
        run_folder.record(run_dir, name, result, probs, targets)

    # ----------------------------------------------------------------- inference
    def _require_model(self) -> None:
        if self.model is None or self.labels is None or self.config.hierarchical and self.doc_model is None:
            raise TfclfError("this classifier is not trained yet: call fit, or load a run folder")

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None,
                      progress: bool = False) -> np.ndarray:
        """Probabilities, one row per text: softmax over classes, or a sigmoid per label.
        Safe to call from several threads at once."""
        self._require_model()
        texts, width = inputs.as_texts(texts), self.labels.num_outputs
        logits = self.predictor.document_logits(self.model, self.doc_model, texts, width, batch_size, progress) \
            if self.config.hierarchical else self.predictor.logits(self.model, texts, width, batch_size, progress)
        return probabilities(logits, self.config.task).numpy()

    def chunk_features(self, texts: Sequence[str], batch_size: int | None = None,
                       progress: bool = False) -> dict[str, np.ndarray]:
        """Hierarchical runs: each document's chunk embeddings from the fine-tuned stage 1."""
        return self.predictor.chunk_features(self.model, texts, batch_size, progress)

    def predict(self, texts: Sequence[str], batch_size: int | None = None) -> list:
        """Label names: one per text, or a list per text for multi-label (over each label's threshold)."""
        return self.decide(self.predict_proba(texts, batch_size))

    def decide(self, probs: np.ndarray) -> list:
        """Label names from probabilities, with this run's thresholds."""
        return self.labels.names(metrics.decide(self.config.task, probs, self.thresholds))

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
            encoder = self.predictor.encoder(self.model)
            return on_text(HierarchicalText(self.tokenizer, encoder, self.doc_model, name="hierarchical"), task)
        return build_text_model(self.tokenizer, self.model, task)

    # ----------------------------------------------------------------- persistence
    def save(self, run_dir: str | Path) -> Path:
        """Write config, labels, thresholds, tokenizer, backbone config and weights into `run_dir`."""
        self._require_model()
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.config.save(run_dir / run_folder.CONFIG)
        atomic_write_json(run_dir / run_folder.LABELS, self.labels.to_json())
        # one threshold per output unit: per label, or for the positive class of a binary task
        thresholded = self.labels.classes[-self.labels.num_outputs:]
        atomic_write_json(run_dir / run_folder.THRESHOLDS, dict(zip(thresholded, map(float, self.thresholds))))

        def write_backbone(folder: Path) -> None:
            self.tokenizer.spec.save(folder)
            self.backbone_config.save_pretrained(str(folder))

        def write_weights(folder: Path) -> None:
            self.model.save_weights(str(folder / "model"))
            if self.doc_model is not None:
                self.doc_model.save_weights(str(folder / "document"))

        run_folder.replace_folder(run_dir / "backbone", write_backbone)
        run_folder.replace_folder(run_dir / "weights", write_weights)
        return run_dir

    @classmethod
    def load(cls, run_dir: str | Path) -> "TextClassifier":
        """A trained classifier from a run folder written by `save` (or `tfclf train`)."""
        run_dir = run_folder.require_finished(run_dir)
        config = RunConfig.from_run(run_dir)
        clf = cls(config, backbones.backbone_config(run_dir / "backbone"),
                  TokenizerSpec.from_directory(run_dir / "backbone"))
        clf.labels = LabelSpace.from_json(read_json(run_dir / run_folder.LABELS))
        clf.thresholds = np.array([float(v) for v in read_json(run_dir / run_folder.THRESHOLDS).values()])
        clf.model = trainer.build_model(config, clf.backbone_config, None, clf.labels.num_outputs)
        clf.model.load_weights(str(run_dir / run_folder.WEIGHTS)).expect_partial()
        if config.hierarchical:
            clf.doc_model = build_document_classifier(clf.predictor.encoder(clf.model).output_shape[-1],
                                                      clf.labels.num_outputs, config.doc_pooling, config.dropout)
            clf.doc_model.load_weights(str(run_dir / "weights" / "document")).expect_partial()
        return clf
