"""Inference of a trained model: length-sorted batches through one traced function per model.

Safe to call from several threads at once: the traced functions and the caches are guarded by
one lock, and a traced function is reused only for the very model object it was traced for.
Hierarchical runs' chunk features (stage 1 over every chunk) are cached for the last few text
lists, so stage 2 retrained on the same documents does not run stage 1 again.
"""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfclf import training
from tfclf.hierarchical import chunk_encoder, group_by_document
from tfclf.io import predicting_bar

_DOCS_PER_CALL = 256  # stage 2 runs an LSTM over [docs, chunks, hidden]
_CACHED_TEXT_LISTS = 3


class Predictor:
    def __init__(self, tokenizer, batch_size: int, xla: bool = False):
        self.tokenizer = tokenizer
        self.batch_size = batch_size  # prediction batches are twice the training batch by default
        self.xla = xla
        self._lock = threading.Lock()
        self._traced_fns: dict = {}  # id(model) -> (model, tf.function)
        self._encoder_of = None  # (stage-1 model, its chunk encoder)
        self._features: dict = {}  # tuple of texts -> (encoder, features)

    def logits(self, model: keras.Model, texts: list[str], width: int, batch_size: int | None = None,
               progress: bool = False) -> np.ndarray:
        """`model` over the token ids of `texts`: one row of `width` per text, in input order."""
        return self.sequences(model, training.token_ids(self.tokenizer, texts), width, batch_size, progress)

    def document_logits(self, model: keras.Model, doc_model: keras.Model, texts: list[str], width: int,
                        batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Hierarchical runs: stage 1 over every chunk, then stage 2 over each document's chunks."""
        grouped = self.chunk_features(model, texts, batch_size, progress)
        forward = self.traced(doc_model, {"chunk_embeddings": tf.TensorSpec([None, None, None], tf.float32),
                                          "chunk_mask": tf.TensorSpec([None, None], tf.int32)})
        parts = [forward({k: v[i:i + _DOCS_PER_CALL] for k, v in grouped.items()}).numpy()
                 for i in range(0, len(texts), _DOCS_PER_CALL)]
        return np.concatenate(parts) if parts else np.zeros((0, width), np.float32)

    def chunk_features(self, model: keras.Model, texts: Sequence[str], batch_size: int | None = None,
                       progress: bool = False) -> dict[str, np.ndarray]:
        """Each document's chunk embeddings from stage 1 `model`,
        {"chunk_embeddings": [docs, chunks, hidden], "chunk_mask": [docs, chunks]}."""
        encoder = self.encoder(model)
        key = tuple(texts)  # the texts themselves (equal, not merely of equal hash)
        with self._lock:
            found = self._features.get(key)
        if found is not None and found[0] is encoder:  # and the same stage 1 computed them
            return found[1]
        ids, doc_index, position = training.chunk_token_ids(self.tokenizer, list(key))
        features = self.sequences(encoder, ids, encoder.output_shape[-1], batch_size, progress)
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

    def sequences(self, model: keras.Model, ids: list[np.ndarray], width: int, batch_size: int | None = None,
                  progress: bool = False) -> np.ndarray:
        """`model` over token-id sequences in length-sorted batches; rows back in input order."""
        out = np.zeros((len(ids), width), np.float32)
        batch_size = batch_size or 2 * self.batch_size
        batches = predicting_bar(training.sorted_batches(ids, batch_size, self.tokenizer.pad_id),
                                 total=-(-len(ids) // batch_size), show=progress)
        spec = tf.TensorSpec([None, None], tf.int32)
        forward = self.traced(model, {"input_ids": spec, "attention_mask": spec})
        for index, batch in batches:
            out[index] = forward(batch).numpy()
        return out

    def traced(self, model: keras.Model, spec: dict):
        """`model` as one tf.function on inputs of any batch and length: traced once, thread-safe."""
        with self._lock:
            found = self._traced_fns.get(id(model))
            if found is None or found[0] is not model:
                found = (model, tf.function(lambda inputs: model(inputs, training=False), input_signature=[spec],
                                            jit_compile=self.xla or None))
                self._traced_fns[id(model)] = found
            return found[1]
