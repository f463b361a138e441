"""TextClassifier: fit, evaluate, predict, save and load, in the manner of scikit-learn.

    clf = TextClassifier.from_pretrained("minilm-l6", task="multilabel")
    clf.fit("train.csv", valid="dev.csv", run_dir="runs/goemotions")
    clf.evaluate("test.csv")
    clf.predict(["what a day!"])
    TextClassifier.load("runs/goemotions")

A scikit-learn estimator: `TextClassifier(model=..., task=..., **settings)` stores the settings
(the table in config.py) and nothing else; `get_params`, `set_params`, `clone`, `GridSearchCV` and
`cross_val_score` work on it; `fit` is re-entrant and never changes them.

A thin facade: trained.py holds a classifier's parts and answers with them, runs.py fits them
stage by stage in the run folder and reads them back; this object keeps the `Run` it was given.
"""
from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import tf_keras as keras

from tfclf import runs
from tfclf.config import RUN, RunConfig, default_epochs
from tfclf.data import inputs
from tfclf.data.inputs import Data
from tfclf.data.tables import BLOCK_ROWS
from tfclf.errors import TfclfError
from tfclf.evaluation.attributions import DEFAULT_STEPS
from tfclf.runtime import precision as precisions
from tfclf.trained import Run, begin

DEFAULTS = {s.name: s.default for s in RUN}


def _known(settings: dict) -> None:
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise TfclfError(f"unknown setting {unknown[0]!r}; the settings are {', '.join(DEFAULTS)}")


class TextClassifier:
    """A fine-tuned encoder for text (or sentence-pair) classification or regression, and everything
    needed to use it again."""

    def __init__(self, model: str = "minilm-l6", task: str = "multiclass", **settings):
        _known(settings)
        self._params = {**DEFAULTS, "model": model, "task": task, **settings}  # as given (scikit-learn's rule)
        self.run_: Run | None = None  # the trained parts: set by fit and load

    def get_params(self, deep: bool = True) -> dict:
        """The settings, as given (a fit's choices, such as the learning rate, are in `config`)."""
        return dict(self._params)

    def set_params(self, **params) -> "TextClassifier":
        _known(params)
        self._params.update(params)
        if self.run_ is not None and not self.run_.trained:  # from_pretrained's checked settings: stale now
            self.run_ = None
        return self

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        multilabel, regression = self._params["task"] == "multilabel", self._params["task"] == "regression"
        return Tags(estimator_type="regressor" if regression else "classifier", non_deterministic=True,
                    target_tags=TargetTags(required=True, multi_output=multilabel, single_output=not multilabel),
                    classifier_tags=None if regression else ClassifierTags(multi_label=multilabel),
                    input_tags=InputTags(one_d_array=True, two_d_array=False, string=True))

    def __repr__(self) -> str:
        changed = {k: v for k, v in self._params.items() if v != DEFAULTS[k] or k in ("model", "task")}
        return f"TextClassifier({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def score(self, X: Data, y=None) -> float:
        """Accuracy (binary, multi-class), subset accuracy at the run's thresholds (multi-label), R^2
        (regression): what scikit-learn's estimators score, and what GridSearchCV maximises by default."""
        result = self.evaluate(X, y)
        return result[{"multilabel": "subset_accuracy", "regression": "r2"}.get(self.config.task, "accuracy")]

    @classmethod
    def from_pretrained(cls, model: str = "minilm-l6", task: str | None = None, keep_head: bool = False,
                        **settings) -> "TextClassifier":
        """Start from a checkpoint (an alias such as minilm-l6, a local folder or a Hugging Face Hub
        name), with the settings checked now rather than when fit runs. `keep_head=True` takes a
        *ForSequenceClassification checkpoint's own head and labels (id2label): trained, it
        predicts at once; `fit(..., warm_start=True)` continues training it (pairs=True for a
        cross-encoder or an NLI model, which read sentence pairs)."""
        clf = cls(model, task or "multiclass", **settings)
        if keep_head:
            clf._params.update(runs.head_settings(model, task))
        clf.run_ = runs.with_head(clf._begin()) if keep_head else clf._begin()
        return clf

    def _begin(self) -> Run:
        """An untrained run of the settings (runs.begin_from)."""
        return runs.begin_from(self._params, frozenset(k for k, v in self._params.items() if v != DEFAULTS[k]))

    def fit(self, X: Data, y=None, *, valid: Data | None = None, valid_labels=None,
            run_dir: str | Path | None = None, verbose: int | str = "auto", warm_start: bool = False,
            classes: Sequence | None = None, overwrite: bool = False, pairs: Sequence[str] | None = None,
            valid_pairs: Sequence[str] | None = None) -> "TextClassifier":
        """Fine-tune on `X` (a file, a DataFrame, or texts with their labels `y`: any container
        scikit-learn reads; `classes` names the columns of indicator rows); early stopping, best
        weights and thresholds use `valid` (without it, the seeded valid_fraction of `X`). Every fit
        starts from the pretrained checkpoint, as in scikit-learn; `warm_start=True` continues from
        the current weights instead (with the same labels). Sentence pairs: X a list of (text, pair)
        tuples, or texts with `pairs` beside them, or a file or DataFrame with `pair_column`.

        `run_dir` gets the finished run; one there is replaced only with `overwrite`. A fit killed
        midway resumes when run again with the same settings and data (docs/RELIABILITY.md)."""
        run = self._begin()
        cfg = run.config
        precisions.require(cfg.precision)
        if warm_start and (self.run_ is None or not self.run_.trained):
            raise TfclfError("warm_start=True continues a trained model: fit or load one first")
        keras.utils.set_random_seed(cfg.seed)
        data = inputs.labelled(X, y, valid, valid_labels, cfg, classes=classes, pairs=pairs, valid_pairs=valid_pairs)
        data = runs.fittable(cfg, data, self.run_ if warm_start else None)
        if cfg.epochs is None:  # chosen from this fit's training data: chunks, when stage 1 trains on chunks
            cfg = dataclasses.replace(cfg, epochs=default_epochs(run.reader.count_sequences(data.train.texts),
                                                                 cfg.batch_size))
        if cfg != run.config or data.pairs != cfg.pairs:  # the reader and tokenizer of the settings chosen
            cfg = dataclasses.replace(cfg, pairs=data.pairs)
            run = begin(cfg, run.backbone_config, run.tokenizer.spec, run.checkpoint, run.given)
        previous = self.run_.model if warm_start else None
        self.run_ = None  # a fit that fails leaves no half-trained classifier behind
        self.run_ = runs.fit(run, data, run_dir, overwrite, verbose, previous)
        return self

    def fit_documents(self, X: Data, y: Sequence | None = None, *, valid: Data | None = None,
                      valid_labels: Sequence | None = None, doc_pooling: str | None = None,
                      run_dir: str | Path | None = None, verbose: int | str = "auto",
                      overwrite: bool = False) -> "TextClassifier":
        """Two-stage runs: train stage 2 again (say with another `doc_pooling`) on the fine-tuned
        stage 1, which is kept as it is. Pass the data `fit` had; a new `run_dir` gets the result."""
        trained = self._trained()
        data = inputs.labelled(X, y, valid, valid_labels, trained.config, trained.labels)
        self.run_ = runs.refit_documents(trained, data, doc_pooling, run_dir, overwrite, verbose)
        if doc_pooling:
            self._params["doc_pooling"] = doc_pooling
        return self

    def _trained(self) -> Run:
        if self.run_ is None:
            raise TfclfError("this classifier is not trained yet: call fit, or load a run folder")
        self.run_.require_trained()
        return self.run_

    def require_trained(self) -> None:
        self._trained()

    @property
    def config(self) -> RunConfig:
        """The run's settings: as trained or checked (with what tfclf chose), or as given."""
        return self.run_.config if self.run_ is not None else RunConfig(**self._params)

    model = property(lambda self: self.run_ and self.run_.model, doc="token ids -> logits (Keras), once trained")
    labels = property(lambda self: self.run_ and self.run_.labels, doc="the label space (data/labels.py)")
    history = property(lambda self: self.run_.history if self.run_ else {}, doc="Keras's history of stage 1")
    run_id = property(lambda self: self.run_ and self.run_.run_id, doc="the finished run this is, if any")
    reader = property(lambda self: self._trained().reader, doc="how the run reads a text (readers.py)")
    tokenizer = property(lambda self: (self.run_ or self._begin()).tokenizer, doc="the in-graph tokenizer")
    backbone_config = property(lambda self: (self.run_ or self._begin()).backbone_config)
    given = property(lambda self: (self.run_ or self._begin()).given, doc="the settings given, not chosen")

    @property
    def thresholds(self) -> np.ndarray | None:
        """The decision threshold of each head unit (tuned on validation for multi-label)."""
        return self.run_ and self.run_.thresholds

    @thresholds.setter
    def thresholds(self, value) -> None:
        run = self._trained()
        run.thresholds = np.broadcast_to(np.asarray(value, np.float32), (run.labels.num_outputs,)).copy()

    @property
    def classes_(self) -> np.ndarray:
        """The classes in the order of predict_proba's columns, as the labels were given (names,
        integers, booleans; indicator columns by their names or 0..k-1), as in scikit-learn."""
        if self.run_ is None or self.run_.labels is None or self.run_.config.task == "regression":
            raise AttributeError("classes_: this classifier is not trained yet (or a regression, which has none)")
        return self.run_.labels.classes_

    @property
    def prediction_precision(self) -> str:
        """What it predicts in: float32, matmul_bfloat16, int8 (OpenVINO), or its Keras policy."""
        run = self._trained()
        return run.engine_model.precision if run.engine_model is not None else run.model.precision

    def predict_proba(self, X: Iterable[str], batch_size: int | None = None, progress: bool = False,
                      pairs: Iterable[str] | None = None) -> np.ndarray:
        """Probabilities, one row per text and one column per class of `classes_` (both classes for
        binary, as scikit-learn gives them). `X`: any iterable of texts, read a block at a time ((text,
        pair) tuples, or texts with `pairs`, for a run on sentence pairs). Thread-safe."""
        from tfclf.tasks import class_probabilities, require_classes

        run = self._trained()
        require_classes(run.config.task, "predict_proba")
        return class_probabilities(run.config.task, run.stream(inputs.paired(X, pairs), batch_size, progress))

    def predict(self, X: Iterable[str], batch_size: int | None = None, pairs: Iterable[str] | None = None):
        """Labels as they were given to fit: one per text, a list per text for multi-label (each
        label over its threshold), or indicator rows when they came as such; regression's scores."""
        run = self._trained()
        return run.labels.values(run.decide(run.stream(inputs.paired(X, pairs), batch_size)))

    def decide(self, probs: np.ndarray) -> list:
        """Label names (as files and the CLI show them) from predict_proba's, at the run's thresholds."""
        from tfclf.tasks import unit_probabilities

        run = self._trained()
        return run.labels.names(run.decide(unit_probabilities(run.config.task, probs)))

    def predict_file(self, data: str | Path, out: str | Path, *, shard: str | None = None, resume: bool = False,
                     block_rows: int = BLOCK_ROWS, progress: bool = False) -> int:
        """Predict a CSV, TSV, JSON Lines or Parquet file into `out` (CSV, TSV or JSON Lines) a block at
        a time, carrying its other columns; `shard="K/N"` predicts the K-th of N interleaved parts;
        `resume` continues a prediction killed midway (serving/streaming.py). Returns the rows written."""
        return self._trained().predict_file(data, out, shard, resume, block_rows, progress)

    def evaluate(self, data: Data, labels: Sequence | None = None, run_dir: str | Path | None = None,
                 name: str | None = None, progress: bool = False, pairs: Sequence[str] | None = None) -> dict:
        """The task's metrics on labelled data, with the run's thresholds; a file is read a block at a
        time, keeping only each row's probabilities and targets. Recorded when `run_dir` is given."""
        return self._trained().evaluate(inputs.paired(data, pairs), labels, run_dir, name, progress)

    def explain(self, texts: Sequence[str], labels: str | Sequence[str] | None = None,
                steps: int = DEFAULT_STEPS, progress: bool = False, pairs: Sequence[str] | None = None) -> list[dict]:
        """Why: integrated-gradient attributions of each text's predicted label (or of `labels`,
        each separately), per word piece and per word (of both texts of a pair), with the completeness
        gap (evaluation/attributions.py). Returns per text {"text", "predicted", "attributions": [...]}."""
        return self._trained().explain(texts, labels, steps, progress, pairs)

    def chunk_features(self, texts: Sequence[str], batch_size: int | None = None,
                       progress: bool = False) -> dict[str, np.ndarray]:
        """Two-stage runs: each document's chunk embeddings from the fine-tuned stage 1."""
        run = self._trained()
        return run.reader.chunk_features(run.model, texts, batch_size, progress)

    def text_model(self, with_probabilities: bool = True) -> keras.Model:
        """A Keras model (tf_keras) on raw strings: tokenization in the graph, then this classifier;
        its probabilities are one unit per head unit (binary: the positive class's, Keras's way)."""
        run = self._trained()
        return run.reader.text_model(run.model, run.config.task if with_probabilities else None)

    def save(self, run_dir: str | Path, overwrite: bool = False) -> Path:
        """This classifier as the finished run in `run_dir`, swapped in whole; another run there is
        replaced only with `overwrite`."""
        return runs.save(self._trained(), Path(run_dir), overwrite)

    def export(self, out: str | Path, version: int | None = None, precision: str = "float32",
               format: str = "savedmodel") -> Path:
        """A SavedModel that TF Serving serves from raw text at `out/VERSION/` (serving/export.py), the
        same for OpenVINO Model Server (format="openvino"), or a folder transformers loads ("huggingface")."""
        if format == "openvino":
            from tfclf.serving.openvino_export import export_openvino

            return export_openvino(self._trained(), out, version, precision)
        if format == "huggingface":
            from tfclf.serving.hugging_face import export_hugging_face

            return export_hugging_face(self._trained(), out)
        from tfclf.serving.export import export

        return export(self._trained(), out, version, precision=precision)

    @classmethod
    def load(cls, run_dir: str | Path, precision: str | None = None, engine: str = "tensorflow",
             calibration: Sequence[str] | None = None, **data_settings) -> "TextClassifier":
        """A trained classifier from a run folder written by `save` (or `tfclf train`).

        `precision` (auto, float32 or matmul_bfloat16) is what its predictions run in; by default
        the run's own setting, so an `auto` single-label run predicts with bf16 matmuls on CPUs that
        have them (multi-label stays float32: runtime/precision.py `for_prediction` says why).
        The precision is this model's own: other models in the process keep theirs. `engine`
        (tensorflow, openvino, auto) runs predict, predict_proba and evaluate (serving/openvino.py);
        precision="int8" quantizes it there, calibrated on `calibration` (texts like those it will read).
        `data_settings` (text_column, label_column, label_sep, drop_empty, encoding) replace the
        saved ones, for files laid out otherwise than the training data."""
        if precision is not None and precision != "int8":
            if precision not in precisions.FOR_PREDICTION:
                raise TfclfError(f"precision must be one of {', '.join(precisions.FOR_PREDICTION)} for "
                                 f"prediction, got {precision!r}")
            precisions.require(precision)
        run = runs.load(run_dir, precision, engine, calibration, **data_settings)
        clf = cls(**run.config.to_json())
        clf.run_ = run
        return clf


# help(TextClassifier) and scikit-learn's repr read the settings from the signature
TextClassifier.__init__.__signature__ = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] +
    [inspect.Parameter(s.name, inspect.Parameter.POSITIONAL_OR_KEYWORD if s.name in ("model", "task") else
                       inspect.Parameter.KEYWORD_ONLY, default=s.default) for s in
     sorted(RUN, key=lambda s: s.name not in ("model", "task"))])
