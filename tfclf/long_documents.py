"""Texts longer than the backbone reads: what each --long-doc strategy means, in one place.

A *reader* is how a run turns texts into what stage 1 learns from and how it gets a text's
logits back. `truncate` reads the first --max-length tokens of each text. `hierarchical` is
the two-stage model: stage 1 fine-tunes the ordinary chunk classifier (models.build_classifier) on chunks that
carry their document's labels. Stage 2 stacks the fine-tuned embedding of each chunk of a
document (the pooled [CLS] state, or whatever --pooling gives) into a padded, masked
sequence and classifies it: an LSTM, or masked mean, max or attention pooling.

The recipe fails silently when chunk embeddings end up beside another document's label.
Here every chunk row carries its document index and its position in the document, and
`group_by_document` places rows by those, never by row order; in the graph, chunks come
from one ragged tensor whose rows are the documents.
"""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfclf import tasks, training
from tfclf.attributions import Explainer, LabelAttribution, chunk_integral
from tfclf.errors import TfclfError
from tfclf.models import SequenceText, build_text_model, on_text
from tfclf.settings import DOC_POOLINGS

_DOCS_PER_CALL = 256  # stage 2 runs an LSTM over [docs, chunks, hidden]
_CACHED_TEXT_LISTS = 3


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
        return training.token_ids(self.tokenizer, texts), targets

    def fit(self, model, texts, targets, valid: tuple | None, num_outputs: int, work: Path, verbose) -> None:
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
        return self.explainer(model).explain(training.token_ids(self.tokenizer, [text])[0], label, unit, sign,
                                             steps)

    def explainer(self, model: keras.Model) -> Explainer:
        """One Explainer (its traced functions) per stage-1 model object."""
        if self._explainer_of is None or self._explainer_of[0] is not model:
            spec = self.tokenizer.spec
            self._explainer_of = (model, Explainer(model, spec.vocab, self.tokenizer.pad_id,
                                                   {spec.token_id(t) for t in spec.special_tokens}))
        return self._explainer_of[1]

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
        self._features: dict = {}  # tuple of texts -> (encoder, features), the last few lists
        self._chunk_integral_of: tuple | None = None  # (stage 2 model, its PathIntegral)

    def sequences(self, texts, targets):
        ids, doc_index, _ = chunk_token_ids(self.tokenizer, texts)
        return ids, targets[doc_index]

    def fit(self, model, texts, targets, valid, num_outputs, work, verbose) -> None:
        self.forget_features()  # embeddings of the previous stage 1
        features = self.chunk_features(model, texts)
        valid = (self.chunk_features(model, valid[0]), valid[1]) if valid is not None else None
        self.doc_model = train_documents(self.config, features, targets, valid, num_outputs, work, verbose)

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
        {"chunk_embeddings": [docs, chunks, hidden], "chunk_mask": [docs, chunks]}. Cached for
        the last few text lists, so stage 2 retrained on the same documents skips stage 1."""
        encoder = self.encoder(model)
        key = tuple(texts)  # the texts themselves (equal, not merely of equal hash)
        with self._lock:
            found = self._features.get(key)
        if found is not None and found[0] is encoder:  # and the same stage 1 computed them
            return found[1]
        ids, doc_index, position = chunk_token_ids(self.tokenizer, list(key))
        features = self.predictor.sequences(encoder, ids, encoder.output_shape[-1], batch_size, progress)
        grouped = group_by_document(features, doc_index, position, len(key))
        with self._lock:
            self._features.pop(key, None)
            while len(self._features) >= _CACHED_TEXT_LISTS:
                self._features.pop(next(iter(self._features)))
            self._features[key] = (encoder, grouped)
        return grouped

    def forget_features(self) -> None:
        with self._lock:
            self._features.clear()

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
        features = self.chunk_features(model, [text])
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


def chunk_token_ids(tokenizer, texts: list[str], chunk: int = 512) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Every document's chunks, one int32 array each, with the document index and the position
    of each chunk in its document: the ids that travel with the chunks through both stages."""
    ids: list[np.ndarray] = []
    doc_index, position = [], []
    for start in range(0, len(texts), chunk):
        ragged = tokenizer.chunks(tf.constant(texts[start:start + chunk], dtype=tf.string))
        docs = ragged.value_rowids().numpy()
        splits = ragged.row_splits.numpy()
        values, token_splits = ragged.values.flat_values.numpy(), ragged.values.row_splits.numpy()
        ids.extend(values[a:b] for a, b in zip(token_splits[:-1], token_splits[1:]))
        doc_index.append(docs + start)
        position.append(np.arange(len(docs)) - splits[docs])
    if not texts:
        return [], np.zeros(0, np.int64), np.zeros(0, np.int64)
    return ids, np.concatenate(doc_index), np.concatenate(position)


def train_documents(config, features: dict, targets: np.ndarray, valid: tuple | None, num_outputs: int,
                    work: Path, verbose) -> keras.Model:
    """Stage 2: each document's fine-tuned chunk embeddings through the document classifier
    (LSTM, mean, max or attention), the best epoch on `valid` kept."""
    keras.utils.set_random_seed(config.seed)
    doc_model = build_document_classifier(features["chunk_embeddings"].shape[-1], num_outputs, config.doc_pooling,
                                          config.dropout)
    metric = tasks.monitored_metric(config.task)
    doc_model.compile(optimizer=keras.optimizers.Adam(config.doc_learning_rate), loss=tasks.loss(config.task),
                      metrics=[metric])
    best = work / "checkpoints" / "document_best"
    found = [training.HistoryCSV(work / "document_history.csv")]
    if valid is not None:
        found += [keras.callbacks.ModelCheckpoint(str(best), monitor="val_" + metric.name, mode="max",
                                                  save_best_only=True, save_weights_only=True),
                  keras.callbacks.EarlyStopping(monitor="val_" + metric.name, mode="max",
                                                patience=max(config.patience, 5))]
    doc_model.fit(features, targets, batch_size=config.batch_size, epochs=config.doc_epochs, validation_data=valid,
                  callbacks=found, verbose=verbose)
    if valid is not None:
        doc_model.load_weights(str(best)).expect_partial()
    return doc_model


def chunk_encoder(classifier: keras.Model) -> keras.Model:
    """The stage-1 classifier up to its pooled features: token ids and mask -> one vector per chunk."""
    return keras.Model(classifier.input, classifier.get_layer("pooling").output, name="chunk_encoder")


class DocumentPooling(keras.layers.Layer):
    """A document's chunk embeddings [batch, chunks, hidden] and mask -> one vector per document."""

    def __init__(self, mode: str = "lstm", units: int = 128, **kwargs):
        super().__init__(**kwargs)
        if mode not in DOC_POOLINGS:
            raise ValueError(f"document pooling must be one of {DOC_POOLINGS}, got {mode!r}")
        self.mode, self.units = mode, units
        if mode == "lstm":
            self.lstm = keras.layers.LSTM(units, name="lstm")
        if mode == "attention":  # additive attention with one learned query (Yang et al. 2016)
            self.project = keras.layers.Dense(units, activation="tanh", name="attention_projection")
            # A zero query starts as the masked mean and sharpens from there. A random one can put
            # nearly all weight on one uninformative chunk at once (scores 5.4 against -0.5 were seen
            # on fine-tuned embeddings), where the saturated softmax passes back almost no gradient
            # and stage 2 stays at chance.
            self.score = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros", name="attention_score")

    def call(self, embeddings: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        present = tf.cast(mask, tf.bool)
        if self.mode == "lstm":
            return self.lstm(embeddings, mask=present)  # the state after the document's last real chunk
        weights = tf.cast(mask, embeddings.dtype)[:, :, None]
        if self.mode == "mean":
            return tf.reduce_sum(embeddings * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)
        if self.mode == "max":
            return tf.reduce_max(embeddings + (weights - 1.0) * 1e4, axis=1)
        # scaled by 1/sqrt(units): the query learns slower than the classifier it feeds, which kept
        # it from locking onto a chunk before the classifier knew which chunks matter
        scores = self.score(self.project(embeddings)) / tf.sqrt(tf.cast(self.units, embeddings.dtype))
        scores = tf.where(present[:, :, None], scores, -1e9)
        return tf.reduce_sum(tf.nn.softmax(scores, axis=1) * embeddings, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "units": self.units}


def build_document_classifier(hidden_size: int, num_outputs: int, pooling: str = "lstm",
                              dropout: float = 0.1, units: int = 128) -> keras.Model:
    """Stage 2: chunk embeddings [docs, chunks, hidden] and chunk mask [docs, chunks] -> logits."""
    embeddings = keras.Input(shape=(None, hidden_size), name="chunk_embeddings")
    mask = keras.Input(shape=(None,), dtype=tf.int32, name="chunk_mask")
    pooled = DocumentPooling(pooling, units, name="document_pooling")(embeddings, mask)
    features = keras.layers.Dropout(dropout, name="document_dropout")(pooled)
    logits = keras.layers.Dense(num_outputs, name="document_logits", dtype="float32")(features)
    return keras.Model({"chunk_embeddings": embeddings, "chunk_mask": mask}, logits, name="document_classifier")


def group_by_document(features: np.ndarray, doc_index: np.ndarray, position: np.ndarray,
                      num_docs: int) -> dict[str, np.ndarray]:
    """Chunk rows in any order -> {"chunk_embeddings": [docs, chunks, hidden], "chunk_mask"}.

    Row r goes to document doc_index[r] at chunk position[r]; every document must have its
    first chunk and no gaps, else something upstream lost or duplicated chunks."""
    doc_index, position = np.asarray(doc_index), np.asarray(position)
    counts = np.bincount(doc_index, minlength=num_docs) if len(doc_index) else np.zeros(num_docs, int)
    width = max(int(counts.max(initial=0)), 1)
    if len(counts) != num_docs or counts.min(initial=1) < 1 or position.max(initial=0) >= width \
            or np.any(position >= counts[doc_index]):
        raise TfclfError("chunks do not cover every document exactly once: stage 2 would see misaligned inputs")
    embeddings = np.zeros((num_docs, width, features.shape[-1]), np.float32)
    mask = np.zeros((num_docs, width), np.int32)
    embeddings[doc_index, position] = features
    np.add.at(mask, (doc_index, position), 1)  # unbuffered: a duplicated chunk counts twice
    if mask.max(initial=0) > 1:
        raise TfclfError("two chunks claim the same document position: stage 2 would see misaligned inputs")
    return {"chunk_embeddings": embeddings, "chunk_mask": mask}


def document_logits(tokenizer, encoder: keras.Model, doc_model: keras.Model, texts: tf.Tensor) -> tf.Tensor:
    """Raw documents -> logits, all in the graph: chunk, encode every chunk, regroup by document."""
    chunks = tokenizer.chunks(texts)  # [docs, (chunks), (tokens)]
    features = encoder(tokenizer.pad(chunks.values), training=False)
    grouped = tf.RaggedTensor.from_row_splits(features, chunks.row_splits)
    embeddings = grouped.to_tensor()
    mask = tf.sequence_mask(grouped.row_lengths(), tf.shape(embeddings)[1], dtype=tf.int32)
    return doc_model({"chunk_embeddings": embeddings, "chunk_mask": mask}, training=False)


class HierarchicalText(keras.layers.Layer):
    """Raw document strings -> logits of the two-stage model, for a Keras model on text."""

    def __init__(self, tokenizer, encoder: keras.Model, doc_model: keras.Model, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.tokenizer, self.encoder, self.doc_model = tokenizer, encoder, doc_model

    def call(self, texts: tf.Tensor) -> tf.Tensor:
        return document_logits(self.tokenizer, self.encoder, self.doc_model, tf.reshape(texts, [-1]))
