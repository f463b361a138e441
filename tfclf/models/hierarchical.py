"""The two-stage (hierarchical) model for long documents: stage 1 is the chunk classifier
(heads.build_classifier) cut at its pooled embedding; stage 2 classifies a document from its
chunks' embeddings, padded and masked (LSTM, or mean, max or attention pooling).

Chunk rows are placed back into their documents by the document index and position each
chunk carries (text/sequences.chunk_token_ids), never by row order: the hand-written recipe
falls to chance when a shuffle or a length sort reorders them. In the graph the chunks come
from one ragged tensor whose rows are the documents. readers.Hierarchical says when a run
uses these; training/fit.train_documents trains stage 2.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfclf.config import DOC_POOLINGS
from tfclf.errors import TfclfError
from tfclf.models.heads import BackboneModel


def chunk_encoder(classifier: keras.Model) -> keras.Model:
    """The stage-1 classifier up to its pooled features: token ids and mask -> one vector per chunk."""
    return BackboneModel(classifier.input, classifier.get_layer("pooling").output, name="chunk_encoder")


def lstm(units: int) -> keras.layers.Layer:
    """Stage 2's LSTM: Keras's `LSTM` where a GPU is visible (its cuDNN kernel), else the same
    cell in Keras's generic `RNN`. In a traced graph `LSTM` builds its cuDNN branch beside the CPU
    one and leaves Grappler to pick, every time it is traced; on a CPU that doubled stage 2's fit
    and made its predict 4x slower (docs/BENCHMARKS.md). Same weights under the same checkpoint
    paths (lstm/cell/...), same numbers: a run trained either way loads into the other."""
    if tf.config.list_logical_devices("GPU"):
        return keras.layers.LSTM(units, name="lstm")
    return keras.layers.RNN(keras.layers.LSTMCell(units, name="lstm_cell"), name="lstm")


class DocumentPooling(keras.layers.Layer):
    """A document's chunk embeddings [batch, chunks, hidden] and mask -> one vector per document."""

    def __init__(self, mode: str = "lstm", units: int = 128, **kwargs):
        super().__init__(**kwargs)
        if mode not in DOC_POOLINGS:
            raise ValueError(f"document pooling must be one of {DOC_POOLINGS}, got {mode!r}")
        self.mode, self.units = mode, units
        if mode == "lstm":
            self.lstm = lstm(units)
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
