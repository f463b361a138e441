"""TextClassifier: fit, evaluate, predict, save and load, in the manner of scikit-learn.

    clf = TextClassifier.from_pretrained("minilm-l6", task="multilabel")
    clf.fit("train.csv", valid="dev.csv", run_dir="runs/goemotions")
    clf.evaluate("test.csv")
    clf.predict(["what a day!"])
    TextClassifier.load("runs/goemotions")

A thin facade: data/inputs.py checks the data, runs.py fits stage by stage in the run folder
(training/fit.py builds and fine-tunes, readers.py reads texts and trains stage 2),
serving/predictor.py runs models, tasks.py turns logits into decisions, storage/ keeps the run.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import tf_keras as keras

from tfclf import readers, runs, tasks
from tfclf.config import RunConfig, check_positions, default_epochs, default_learning_rate
from tfclf.console import predicting_bar
from tfclf.data import inputs
from tfclf.data.examples import Columns
from tfclf.data.inputs import Data
from tfclf.data.tables import BLOCK_ROWS
from tfclf.data.labels import LabelSpace
from tfclf.errors import TfclfError
from tfclf.evaluation import attributions, metrics
from tfclf.evaluation.streaming import evaluate_blocks
from tfclf.models import backbones
from tfclf.runtime import distribute, precision as precisions
from tfclf.serving import streaming
from tfclf.serving.predictor import Predictor
from tfclf.storage import run_folder
from tfclf.text.wordpiece import TokenizerSpec, WordPieceTokenizer


class TextClassifier:
    """A fine-tuned BERT-family text classifier and everything needed to use it again."""

    def __init__(self, config: RunConfig, backbone_config, tokenizer_spec: TokenizerSpec,
                 checkpoint: Path | None = None, given: Iterable[str] | None = None):
        if config.learning_rate is None:  # chosen from the checkpoint, and saved as chosen
            config = dataclasses.replace(config, learning_rate=default_learning_rate(backbone_config.hidden_size))
        self.config, self.backbone_config = config, backbone_config
        # the settings the user gave; fit says what it chose for the others (None: all given)
        self.given = frozenset(dataclasses.asdict(config) if given is None else given)
        self.tokenizer = WordPieceTokenizer(tokenizer_spec, config.max_length, config.truncation,
                                            config.chunk_stride, config.max_chunks)
        self.checkpoint = checkpoint  # pretrained weights every fit starts from (None: resolve config.model)
        self.labels: LabelSpace | None = None
        self.thresholds: np.ndarray | None = None
        self.model: keras.Model | None = None  # token ids -> logits (stage 1 of two-stage runs)
        self.history: dict = {}
        self.run_id: str | None = None  # the finished run this classifier is (run.json), if any
        self.predictor = Predictor(self.tokenizer, config.batch_size, config.xla)
        self.reader = readers.reader(config, self.tokenizer, self.predictor)

    @classmethod
    def from_pretrained(cls, model: str = "minilm-l6", task: str = "multiclass", **settings) -> "TextClassifier":
        """Start from a checkpoint: an alias (minilm-l6), a local folder or a Hugging Face Hub name."""
        config = RunConfig(model=model, task=task, **settings)
        path = backbones.resolve_checkpoint(model)
        backbone_config = backbones.backbone_config(path)
        check_positions(config.max_length, getattr(backbone_config, "max_position_embeddings", None), model)
        if config.strategy == "multiworker":  # joins the cluster now: before TensorFlow runs any op
            distribute.make_strategy(config.strategy)
        return cls(config, backbone_config, TokenizerSpec.from_directory(path), path, given=settings)

    def fit(self, train: Data, labels=None, *, valid: Data | None = None, valid_labels=None,
            run_dir: str | Path | None = None, verbose: int | str = "auto", warm_start: bool = False,
            classes: Sequence | None = None, overwrite: bool = False) -> "TextClassifier":
        """Fine-tune on `train`; early stopping, best weights and thresholds use `valid` (without it,
        the seeded valid_fraction of `train`, 10 % by default).

        `labels` beside a list of texts may be any container scikit-learn reads (names, integers,
        booleans, lists of names, multi-hot rows, 1-D or 2-D arrays, pandas Series); `classes`
        names the columns of indicator rows. Every fit starts from the pretrained checkpoint, as
        in scikit-learn, on a fresh object, a fitted one or one loaded from a run folder.
        `warm_start=True` continues from the current weights instead (with the same labels).

        `run_dir` gets the finished run. A folder that holds one is refused unless `overwrite`:
        then the new run trains beside it and replaces it when it finishes. A fit killed midway
        resumes when run again with the same settings and data (docs/RELIABILITY.md)."""
        cfg = self.config
        precisions.require(cfg.precision)
        if warm_start and self.model is None:
            raise TfclfError("warm_start=True continues a trained model: fit or load one first")
        keras.utils.set_random_seed(cfg.seed)
        data = inputs.labelled(train, labels, valid, valid_labels, cfg, classes=classes)
        if warm_start and data.labels.classes != self.labels.classes:
            raise TfclfError(f"warm_start=True needs the labels the model was trained on "
                             f"({', '.join(self.labels.classes)}), got {', '.join(data.labels.classes)}")
        if "epochs" not in self.given or cfg.epochs is None:  # chosen from this fit's training data
            steps_from = self.reader.count_sequences(data.train.texts)  # chunks, when stage 1 trains on chunks
            self.config = cfg = dataclasses.replace(cfg, epochs=default_epochs(steps_from, cfg.batch_size))
        previous = self.model if warm_start else None
        self.labels, self.model, self.run_id = data.labels, None, None
        runs.fit(self, data, run_dir, overwrite, verbose, previous)
        return self

    def fit_documents(self, train: Data, labels: Sequence | None = None, *, valid: Data | None = None,
                      valid_labels: Sequence | None = None, doc_pooling: str | None = None,
                      run_dir: str | Path | None = None, verbose: int | str = "auto",
                      overwrite: bool = False) -> "TextClassifier":
        """Two-stage runs: train stage 2 again (say with another `doc_pooling`) on the fine-tuned
        stage 1, which is kept as it is. Pass the data `fit` had; a new `run_dir` gets the result."""
        self._require_model()
        if not self.reader.two_stages:
            raise TfclfError("fit_documents needs a hierarchical run (long_doc='hierarchical')")
        self.reader.config = self.config = dataclasses.replace(self.config,
                                                               doc_pooling=doc_pooling or self.config.doc_pooling)
        data = inputs.labelled(train, labels, valid, valid_labels, self.config, self.labels)
        runs.refit_documents(self, data, run_dir, overwrite, verbose)
        return self

    def _require_model(self) -> None:
        if self.model is None or self.labels is None or not self.reader.trained():
            raise TfclfError("this classifier is not trained yet: call fit, or load a run folder")

    @property
    def classes_(self) -> np.ndarray:
        """The classes in the order of predict_proba's columns, as the labels were given (names,
        integers, booleans; indicator columns by their names or 0..k-1), as in scikit-learn."""
        if self.labels is None:
            raise AttributeError("classes_: this classifier is not trained yet")
        return self.labels.classes_

    def predict_proba(self, texts: Iterable[str], batch_size: int | None = None,
                      progress: bool = False) -> np.ndarray:
        """Probabilities, one row per text and one column per class of `classes_`: softmax over the
        classes, both classes for binary (as scikit-learn, the CLI and the SavedModel give them), or
        a sigmoid per label. `texts` may be any iterable (a generator too): it is read a block at a
        time. Safe to call from several threads at once."""
        return tasks.class_probabilities(self.config.task, self._stream(texts, batch_size, progress))

    def _stream(self, texts: Iterable[str], batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """`_probabilities` over any iterable of texts, a block at a time."""
        self._require_model()
        found = [self._probabilities(block, batch_size) for block in
                 predicting_bar(inputs.text_blocks(texts), show=progress, desc="predicting", unit="block")]
        return np.concatenate(found) if found else np.zeros((0, self.labels.num_outputs), np.float32)

    def _probabilities(self, texts: list[str], batch_size: int | None = None, progress: bool = False):
        """One column per unit of the head (binary: the positive class's), as thresholds read them."""
        self._require_model()
        logits = self.reader.logits(self.model, inputs.as_texts(texts), self.labels.num_outputs, batch_size, progress)
        return tasks.probabilities(logits, self.config.task).numpy()

    def predict_file(self, data: str | Path, out: str | Path, *, shard: str | None = None, resume: bool = False,
                     block_rows: int = BLOCK_ROWS, progress: bool = False) -> int:
        """Predict a CSV, TSV, JSON Lines or Parquet file into `out` (CSV, TSV or JSON Lines), a block
        at a time, carrying the input's other columns; `shard="K/N"` predicts the K-th of N
        interleaved parts; `resume` continues a prediction killed midway (serving/streaming.py).
        What `tfclf predict --data` calls. Returns the rows written."""
        self._require_model()

        def predict(texts: list[str]) -> tuple[np.ndarray, list]:
            probs = self._probabilities(texts)
            return tasks.class_probabilities(self.config.task, probs), \
                self.labels.names(tasks.decide(self.config.task, probs, self.thresholds))

        cfg = self.config
        return streaming.predict_file(
            predict, self.labels.classes, tasks.prediction_key(cfg.task), Path(data), Path(out),
            model=self.run_id or f"in-memory {id(self.model)}", columns=Columns.of(cfg), label_sep=cfg.label_sep,
            encoding=cfg.encoding, drop_empty=cfg.drop_empty, shard=streaming.Shard.parse(shard) if shard else None,
            resume=resume, block_rows=block_rows, progress=progress)

    def chunk_features(self, texts: Sequence[str], batch_size: int | None = None,
                       progress: bool = False) -> dict[str, np.ndarray]:
        """Two-stage runs: each document's chunk embeddings from the fine-tuned stage 1."""
        return self.reader.chunk_features(self.model, texts, batch_size, progress)

    def predict(self, texts: Iterable[str], batch_size: int | None = None):
        """Labels as they were given to fit: one per text, a list per text for multi-label (each
        label over its threshold), or indicator rows when they came as such."""
        decided = tasks.decide(self.config.task, self._stream(texts, batch_size), self.thresholds)
        return self.labels.values(decided)

    def decide(self, probs: np.ndarray) -> list:
        """Label names (strings, as files and the CLI show them) from predict_proba's probabilities,
        with this run's thresholds."""
        units = tasks.unit_probabilities(self.config.task, probs)
        return self.labels.names(tasks.decide(self.config.task, units, self.thresholds))

    def evaluate(self, data: Data, labels: Sequence | None = None, run_dir: str | Path | None = None,
                 name: str | None = None, progress: bool = False) -> dict:
        """The task's metrics on labelled data, with the run's thresholds; a file is read a block at a
        time, keeping only each row's probabilities and targets. Recorded when `run_dir` is given."""
        self._require_model()
        blocks = inputs.stream(data, labels, self.config)
        found = evaluate_blocks(predicting_bar(blocks, show=progress, desc="evaluating", unit="block"),
                                self._probabilities, self.labels, self.config.task, self.thresholds)
        if run_dir is not None:  # kept in this classifier's own run, with the figures at 0.5 beside tuned ones
            if self.run_id is None:
                raise TfclfError(f"this classifier has no run in {run_dir} to record the evaluation in: fit it with "
                                 "run_dir=, or load it from there")
            metrics.with_fixed_thresholds(self.config.task, found.result, found.targets, found.probs,
                                          self.labels.classes)
            source = str(data) if isinstance(data, (str, Path)) else "DataFrame" if labels is None else "texts"
            run_folder.record(Path(run_dir), name or source, found.result, found.probs, found.targets, found.texts,
                              run=self.run_id)
        return found.result

    def explain(self, texts: Sequence[str], labels: str | Sequence[str] | None = None,
                steps: int = attributions.DEFAULT_STEPS, progress: bool = False) -> list[dict]:
        """Why: integrated-gradient attributions of each text's predicted label (or of `labels`,
        each separately), per word piece and per word, with the completeness gap (tfclf/attributions.py).
        Returns per text {"text", "predicted", "attributions": [LabelAttribution, ...]}."""
        self._require_model()
        texts = inputs.as_texts(texts)
        for i, text in enumerate(texts):
            if not text.strip():
                raise TfclfError(f"text {i + 1} is empty: there is nothing to explain")
        if steps < 1:
            raise TfclfError(f"steps must be at least 1, got {steps}")
        classes = self.labels.classes
        wanted = [labels] if isinstance(labels, str) else list(labels or [])
        unknown = [name for name in wanted if name not in classes]
        if unknown:
            raise TfclfError(f"unknown label {unknown[0]!r}: this run's labels are {', '.join(classes)}")
        probs = self._probabilities(texts)
        predicted = self.labels.names(tasks.decide(self.config.task, probs, self.thresholds))
        chosen = [[classes.index(n) for n in wanted]] * len(texts) if wanted else \
            tasks.explained_classes(self.config.task, probs, self.thresholds)
        found = []
        for text, names, indices in predicting_bar(zip(texts, predicted, chosen), len(texts), progress, "explaining", "text"):
            found.append({"text": text, "predicted": names, "attributions": [
                self.reader.explain(self.model, text, classes[c], *tasks.score_unit(self.config.task, c), steps)
                for c in indices]})
        return found

    def text_model(self, with_probabilities: bool = True) -> keras.Model:
        """A Keras model on raw strings: tokenization in the graph, then this classifier; its
        probabilities are one unit per head unit (binary: the positive class's, Keras's way)."""
        self._require_model()
        return self.reader.text_model(self.model, self.config.task if with_probabilities else None)

    def save(self, run_dir: str | Path, overwrite: bool = False) -> Path:
        """This classifier as the finished run in `run_dir` (config, labels, thresholds, tokenizer,
        backbone config, weights), swapped in whole; another run there is replaced only with
        `overwrite`."""
        self._require_model()
        return runs.save(self, Path(run_dir), overwrite)

    @classmethod
    def load(cls, run_dir: str | Path, precision: str | None = None) -> "TextClassifier":
        """A trained classifier from a run folder written by `save` (or `tfclf train`).

        `precision` (auto, float32 or matmul_bfloat16) is what its predictions run in; by default
        the run's own setting, so an `auto` single-label run predicts with bf16 matmuls on CPUs that
        have them (multi-label stays float32: runtime/precision.py `for_prediction` says why).
        The precision is this model's own: other models in the process keep theirs."""
        if precision is not None:
            if precision not in precisions.FOR_PREDICTION:
                raise TfclfError(f"precision must be one of {', '.join(precisions.FOR_PREDICTION)} for "
                                 f"prediction, got {precision!r}")
            precisions.require(precision)
        return runs.load(cls, run_dir, precision)

    @property
    def prediction_precision(self) -> str:
        """What this classifier predicts in: float32, matmul_bfloat16 (bf16 matmuls, float32
        elsewhere) or the Keras policy its model was built in."""
        self._require_model()
        return self.model.precision
