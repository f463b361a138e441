"""How a run reads a text: what each --long-doc strategy means for training, prediction, export
and explanation, in one place.

A *reader* turns texts into what stage 1 learns from and gets a text's logits back.
`truncate` reads the first --max-length tokens of each text (or as --truncation says).
`hierarchical` is the two-stage model (models/hierarchical.py): stage 1 fine-tunes the
ordinary chunk classifier on chunks that carry their document's labels, stage 2 classifies
each document from its chunks' fine-tuned embeddings. The reader calls down into the rooms
below it, each once: the text's chunks (text/), the models (models/), their fitting
(training/fit.py), inference (serving/predictor.py) and attributions (evaluation/).
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfclf.data.examples import is_pair
from tfclf.errors import TfclfError
from tfclf.evaluation.attributions import Explainer, LabelAttribution, chunk_integral
from tfclf.models.heads import SequenceText, build_text_model, on_text
from tfclf.models.hierarchical import HierarchicalText, build_document_classifier, chunk_encoder, group_by_document
from tfclf.text.sequences import chunk_token_ids, count_chunks, token_ids
from tfclf.training.fit import train_documents

_DOCS_PER_CALL = 256  # stage 2 runs an LSTM over [docs, chunks, hidden]


def reader(config, tokenizer, predictor) -> "Truncate":
    """The reader of a run's --long-doc setting."""
    return {"truncate": Truncate, "hierarchical": Hierarchical}[config.long_doc](config, tokenizer, predictor)


class Truncate:
    """Each text is one sequence: its first --max-length tokens (or as --truncation says)."""
    two_stages = False

    def __init__(self, config, tokenizer, predictor):
        self.config, self.tokenizer, self.predictor = config, tokenizer, predictor
        self._explainer_of: tuple | None = None  # (stage-1 model, its Explainer)

    def sequences(self, texts: list[str], targets: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """What stage 1 learns from: token ids, with the targets of each row."""
        return token_ids(self.tokenizer, texts), targets

    def count_sequences(self, texts: list[str]) -> int:
        """How many sequences `sequences` gives stage 1 (its steps an epoch follow): one a text."""
        return len(texts)

    def fit(self, model, texts, targets, valid: tuple | None, num_outputs: int, work: Path, verbose,
            class_weights: np.ndarray | None = None) -> None:
        """Whatever is trained after stage 1 (`valid`: texts and targets, or None): nothing."""

    def trained(self) -> bool:
        return True

    def chunk_features(self, *args, **kwargs):
        raise TfclfError("chunk_features needs a hierarchical run (long_doc='hierarchical')")

    def logits(self, model: keras.Model, texts: list[str], width: int, batch_size: int | None,
               progress: bool) -> np.ndarray:
        return self.predictor.logits(model, texts, width, batch_size, progress)

    def text_layer(self, model: keras.Model) -> keras.layers.Layer:
        """Raw strings -> logits, all in the graph (the SavedModel's serving function)."""
        return SequenceText(self.tokenizer, model, name="sequence")

    def text_model(self, model: keras.Model, task: str | None) -> keras.Model:
        """A Keras model on raw strings (one that can be fitted further, here)."""
        return build_text_model(self.tokenizer, model, task)

    def token_model(self, model: keras.Model) -> keras.Model | None:
        """The model over token ids of one sequence, if that means a text's logits."""
        return model

    def explain(self, model: keras.Model, text: str, label: str, unit: int, sign: float,
                steps: int) -> LabelAttribution:
        """Integrated gradients of `label`'s score (`sign` * logit `unit`) over the text's word pieces."""
        return self.explainer(model).explain(token_ids(self.tokenizer, [text])[0], label, unit, sign,
                                             steps, pair=is_pair(text))

    def explainer(self, model: keras.Model) -> Explainer:
        """One Explainer (its traced functions) per stage-1 model object, on its float32 copy:
        gradients through bf16 matmuls missed the completeness check (a 5.4 % gap where 5 % is
        allowed), and attributions should not depend on the CPU they were computed on."""
        if self._explainer_of is None or self._explainer_of[0] is not model:
            spec = self.tokenizer.spec
            self._explainer_of = (model, Explainer(model.in_precision("float32"), spec, self.tokenizer.pad_id,
                                                   {spec.token_id(t) for t in spec.special_tokens}))
        return self._explainer_of[1]

    def caching(self):
        """What is kept while a fit runs (the hierarchical reader's chunk features): nothing."""
        return contextlib.nullcontext()

    def save(self, folder: Path) -> None:
        """Weights beyond stage 1's, into the run's weights folder: none."""

    def load(self, folder: Path, model: keras.Model, num_outputs: int) -> None:
        """Read back what `save` wrote."""


class Hierarchical(Truncate):
    """Stage 1 on every chunk of every document, stage 2 on each document's chunk embeddings."""
    two_stages = True

    def __init__(self, config, tokenizer, predictor):
        super().__init__(config, tokenizer, predictor)
        self.doc_model: keras.Model | None = None  # stage 2: chunk embeddings -> logits
        self._lock = threading.Lock()
        self._encoder_of = None  # (stage-1 model, its chunk encoder)
        self._features: dict | None = None  # inside `caching`: tuple of texts -> (encoder, features)
        self._chunk_integral_of: tuple | None = None  # (stage 2 model, its PathIntegral)

    def sequences(self, texts, targets):
        ids, doc_index, _ = chunk_token_ids(self.tokenizer, texts)
        return ids, targets[doc_index]

    def count_sequences(self, texts):
        """One a chunk: the documents cut as `sequences` cuts them, counted, not kept."""
        return count_chunks(self.tokenizer, texts)

    def fit(self, model, texts, targets, valid, num_outputs, work, verbose, class_weights=None) -> None:
        features = self.chunk_features(model, texts)
        valid = (self.chunk_features(model, valid[0]), valid[1]) if valid is not None else None
        self.doc_model = train_documents(self.config, features, targets, valid, num_outputs, work, verbose,
                                         class_weights)

    def trained(self) -> bool:
        return self.doc_model is not None

    def logits(self, model, texts, width, batch_size, progress):
        grouped = self.chunk_features(model, texts, batch_size, progress)
        forward = self.predictor.traced(self.doc_model, {
            "chunk_embeddings": tf.TensorSpec([None, None, None], tf.float32),
            "chunk_mask": tf.TensorSpec([None, None], tf.int32)})
        parts = [forward({k: v[i:i + _DOCS_PER_CALL] for k, v in grouped.items()}).numpy()
                 for i in range(0, len(texts), _DOCS_PER_CALL)]
        return np.concatenate(parts) if parts else np.zeros((0, width), np.float32)

    def chunk_features(self, model: keras.Model, texts: Sequence[str], batch_size: int | None = None,
                       progress: bool = False) -> dict[str, np.ndarray]:
        """Each document's chunk embeddings from stage 1 `model`,
        {"chunk_embeddings": [docs, chunks, hidden], "chunk_mask": [docs, chunks]}. Inside
        `caching` (a fit), computed once per list of texts: stage 2 trains on what validation
        then reads again."""
        encoder = self.encoder(model)
        key = tuple(texts)  # the texts themselves (equal, not merely of equal hash)
        with self._lock:
            found = self._features.get(key) if self._features is not None else None
        if found is not None and found[0] is encoder:  # and the same stage 1 computed them
            return found[1]
        ids, doc_index, position = chunk_token_ids(self.tokenizer, list(key))
        features = self.predictor.sequences(encoder, ids, encoder.output_shape[-1], batch_size, progress)
        grouped = group_by_document(features, doc_index, position, len(key))
        with self._lock:
            if self._features is not None:
                self._features[key] = (encoder, grouped)
        return grouped

    @contextlib.contextmanager
    def caching(self):
        """Chunk features kept for the block only (a fit): the training set's embeddings are
        gigabytes for a large corpus (100k documents x 16 chunks x 768 floats: 4.9 GB)."""
        with self._lock:
            self._features = {}
        try:
            yield
        finally:
            with self._lock:
                self._features = None

    def encoder(self, model: keras.Model) -> keras.Model:
        """Stage 1 `model` cut at its pooled embedding (one encoder per model object)."""
        with self._lock:
            if self._encoder_of is None or self._encoder_of[0] is not model:
                self._encoder_of = (model, chunk_encoder(model))
            return self._encoder_of[1]

    def text_layer(self, model):
        return HierarchicalText(self.tokenizer, self.encoder(model), self.doc_model, name="hierarchical")

    def text_model(self, model, task):
        return on_text(self.text_layer(model), task)

    def token_model(self, model):
        return None  # token ids of one chunk are not a document

    def explain(self, model, text, label, unit, sign, steps):
        """Which chunks carried the decision (integrated gradients of stage 2 over the chunk
        embeddings, from zero embeddings), then the word pieces of the top chunk (stage 1)."""
        features = self.chunk_features(self.explainer(model).classifier, [text])  # float32, as the explainer
        embeddings, mask = features["chunk_embeddings"][0], features["chunk_mask"][0]
        if self._chunk_integral_of is None or self._chunk_integral_of[0] is not self.doc_model:
            self._chunk_integral_of = (self.doc_model, chunk_integral(self.doc_model))
        scores, logit, baseline, steps = self._chunk_integral_of[1](embeddings, np.zeros_like(embeddings), mask,
                                                                     unit, sign, steps)
        chunks = int(mask.sum())
        top = int(np.argmax(scores[:chunks]))
        ids, _, position = chunk_token_ids(self.tokenizer, [text])
        inside = self.explainer(model).explain(ids[int(np.flatnonzero(position == top)[0])], label, unit, sign, steps)
        return dataclasses.replace(inside, logit=logit, baseline_logit=baseline, steps=steps,
                                   chunk_scores=scores[:chunks].tolist(), chunk=top)

    def save(self, folder):
        self.doc_model.save_weights(str(folder / "document"))

    def load(self, folder, model, num_outputs):
        self.doc_model = build_document_classifier(self.encoder(model).output_shape[-1], num_outputs,
                                                   self.config.doc_pooling, self.config.dropout)
        self.doc_model.load_weights(str(folder / "document")).expect_partial()
