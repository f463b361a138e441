"""A classifier's parts, and what a trained one answers: probabilities, decisions, a file of
predictions, an evaluation, an explanation.

A `Run` is what a fit or a load produces (runs.py makes it: `begin` for an untrained one, then
`runs.fit` or `runs.load`): the settings, the tokenizer, the model, the label space and the
thresholds, and the reader with what it trained after stage 1. The classifier (classifier.py)
keeps the one it was given; serving/export.py and serving/hugging_face.py read one.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import tf_keras as keras

from tfclf import readers, tasks
from tfclf.config import RunConfig
from tfclf.console import predicting_bar
from tfclf.data import inputs
from tfclf.data.examples import PAIR_SEP, Columns
from tfclf.data.inputs import Data
from tfclf.data.labels import LabelSpace
from tfclf.data.tables import BLOCK_ROWS
from tfclf.errors import TfclfError
from tfclf.evaluation import metrics
from tfclf.evaluation.streaming import evaluate_blocks
from tfclf.serving import streaming
from tfclf.serving.predictor import Predictor
from tfclf.storage import run_folder
from tfclf.text import make_tokenizer
from tfclf.text.packing import InGraphTokenizer


@dataclasses.dataclass
class Run:
    """A classifier's parts: untrained (`begin`), then trained by runs.fit or read back by runs.load."""
    config: RunConfig
    backbone_config: object
    tokenizer: InGraphTokenizer
    reader: readers.Truncate
    checkpoint: Path | None = None  # the pretrained weights a fit starts from (None: resolve config.model)
    given: frozenset = frozenset()  # the settings the user gave: fit says what it chose for the others
    labels: LabelSpace | None = None
    thresholds: np.ndarray | None = None
    model: keras.Model | None = None  # token ids -> logits (stage 1 of two-stage runs)
    history: dict = dataclasses.field(default_factory=dict)
    run_id: str | None = None  # the finished run this is (run.json), if any
    engine_model: object | None = None  # what predicts, when not `model` in TensorFlow (serving/openvino.py)

    @property
    def trained(self) -> bool:
        return self.model is not None and self.labels is not None and self.reader.trained()

    def require_trained(self) -> None:
        if not self.trained:
            raise TfclfError("this classifier is not trained yet: call fit, or load a run folder")

    def probabilities(self, texts: list[str], batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """One column per unit of the head (binary: the positive class's), as thresholds read them."""
        self.require_trained()
        texts = inputs.as_texts(texts)
        inputs.require_pairs(texts, self.config.pairs)
        logits = self.reader.logits(self.engine_model or self.model, texts, self.labels.num_outputs, batch_size,
                                    progress)
        return tasks.probabilities(logits, self.config.task).numpy()

    def stream(self, texts: Iterable[str], batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """`probabilities` over any iterable of texts, read a block at a time."""
        self.require_trained()
        found = [self.probabilities(block, batch_size) for block in
                 predicting_bar(inputs.text_blocks(texts), show=progress, desc="predicting", unit="block")]
        return np.concatenate(found) if found else np.zeros((0, self.labels.num_outputs), np.float32)

    def decide(self, units: np.ndarray) -> np.ndarray:
        return tasks.decide(self.config.task, units, self.thresholds)

    def predict_file(self, data: str | Path, out: str | Path, shard: str | None, resume: bool, block_rows: int,
                     progress: bool) -> int:
        """A file's predictions into `out`, a block at a time (serving/streaming.py)."""
        self.require_trained()

        def predict(texts: list[str]) -> tuple[np.ndarray, list]:
            probs = self.probabilities(texts)
            return tasks.class_probabilities(self.config.task, probs), self.labels.names(self.decide(probs))

        cfg = self.config
        return streaming.predict_file(
            predict, self.labels.classes, tasks.prediction_key(cfg.task), Path(data), Path(out),
            model=self.run_id or f"in-memory {id(self.model)}", columns=Columns.of(cfg), label_sep=cfg.label_sep,
            encoding=cfg.encoding, drop_empty=cfg.drop_empty, shard=streaming.Shard.parse(shard) if shard else None,
            resume=resume, block_rows=block_rows or BLOCK_ROWS, progress=progress)

    def evaluate(self, data: Data, labels, run_dir: str | Path | None, name: str | None, progress: bool) -> dict:
        """The task's metrics on labelled data, recorded in this run's folder when `run_dir` is given."""
        self.require_trained()
        blocks = inputs.stream(data, labels, self.config)
        found = evaluate_blocks(predicting_bar(blocks, show=progress, desc="evaluating", unit="block"),
                                self.probabilities, self.labels, self.config.task, self.thresholds)
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

    def explain(self, texts: Sequence[str], labels: str | Sequence[str] | None, steps: int,
                progress: bool, pairs: Sequence[str] | None = None) -> list[dict]:
        """Integrated-gradient attributions of each text's predicted label, or of `labels`."""
        self.require_trained()
        texts = inputs.as_texts(texts, pairs)
        for i, text in enumerate(texts):
            if not all(part.strip() for part in text.split(PAIR_SEP)):
                raise TfclfError(f"text {i + 1} is empty: there is nothing to explain")
        if steps < 1:
            raise TfclfError(f"steps must be at least 1, got {steps}")
        classes, task = self.labels.classes, self.config.task
        wanted = [labels] if isinstance(labels, str) else list(labels or [])
        unknown = [name for name in wanted if name not in classes]
        if unknown:
            raise TfclfError(f"unknown label {unknown[0]!r}: this run's labels are {', '.join(classes)}")
        probs = self.probabilities(texts)
        predicted = self.labels.names(self.decide(probs))
        chosen = [[classes.index(n) for n in wanted]] * len(texts) if wanted else \
            tasks.explained_classes(task, probs, self.thresholds)
        found = []
        for text, names, indices in predicting_bar(zip(texts, predicted, chosen), len(texts), progress, "explaining",
                                                   "text"):
            found.append({"text": text, "predicted": names, "attributions": [
                self.reader.explain(self.model, text, classes[c], *tasks.score_unit(task, c), steps)
                for c in indices]})
        return found


def begin(config: RunConfig, backbone_config, spec, checkpoint: Path | None = None,
          given: frozenset = frozenset()) -> Run:
    """An untrained run of `config` on a checkpoint of `backbone_config` with tokenizer `spec`."""
    tokenizer = make_tokenizer(spec, config.max_length, config.truncation, config.chunk_stride, config.max_chunks,
                                   config.pair_truncation, config.pairs)
    predictor = Predictor(tokenizer, config.batch_size, config.xla)
    return Run(config, backbone_config, tokenizer, readers.reader(config, tokenizer, predictor), checkpoint, given)
