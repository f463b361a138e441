"""Inference of a trained model: length-sorted batches through one traced function per model.

Safe to call from several threads at once: the traced functions are guarded by one lock, and
a traced function is reused only for the very model object it was traced for, and dropped with it.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfclf.console import predicting_bar
from tfclf.text.sequences import sorted_batches, token_ids


class Predictor:
    def __init__(self, tokenizer, batch_size: int, xla: bool = False):
        self.tokenizer = tokenizer
        self.batch_size = batch_size  # prediction batches are twice the training batch by default
        self.xla = xla
        self._lock = threading.Lock()
        self._traced_fns = weakref.WeakKeyDictionary()  # model -> its tf.function

    def logits(self, model: keras.Model, texts: list[str], width: int, batch_size: int | None = None,
               progress: bool = False) -> np.ndarray:
        """`model` over the token ids of `texts`: one row of `width` per text, in input order."""
        return self.sequences(model, token_ids(self.tokenizer, texts), width, batch_size, progress)

    def sequences(self, model: keras.Model, ids: list[np.ndarray], width: int, batch_size: int | None = None,
                  progress: bool = False) -> np.ndarray:
        """`model` over token-id sequences in length-sorted batches; rows back in input order."""
        out = np.zeros((len(ids), width), np.float32)
        batch_size = batch_size or 2 * self.batch_size
        batches = predicting_bar(sorted_batches(ids, batch_size, self.tokenizer.pad_id, self.xla),
                                 total=-(-len(ids) // batch_size), show=progress)
        spec = tf.TensorSpec([None, None], tf.int32)
        # an engine's model (serving/openvino.py) is its own forward; a Keras model is traced once
        forward = self.traced(model, {name: spec for name in model.input_names}) \
            if isinstance(model, keras.Model) else model
        for index, batch in batches:
            out[index] = np.asarray(forward(batch))
        return out

    def traced(self, model: keras.Model, spec: dict):
        """`model` as one tf.function on inputs of any batch and length: traced once, thread-safe.

        Kept while `model` lives and no longer: the function reaches its model through a weak
        reference, so a notebook that fits again frees the old backbone (a dict of strong
        references kept every model this predictor ever ran)."""
        with self._lock:
            found = self._traced_fns.get(model)
            if found is None:
                ref = weakref.ref(model)
                # autograph=False: the models branch on Python values only (models/heads.py)
                found = tf.function(lambda inputs: ref()(inputs, training=False), input_signature=[spec],
                                    autograph=False, jit_compile=self.xla or None)
                self._traced_fns[model] = found
            return found
