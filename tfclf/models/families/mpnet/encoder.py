"""MPNet's encoder (transformers' MPNetModel): embeddings of word pieces and of positions
numbered from the padding id + 1, then models/layers.py's transformer layers, each adding the
same relative-position bias to its attention scores."""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfclf.models.layers import Embeddings, Encoder, OffsetPositionEmbeddings, initializer

MAX_DISTANCE = 128  # MPNet's relative_position_bucket(max_distance=128)


def bucket_table(positions: int, buckets: int) -> np.ndarray:
    """The bucket of every relative position -(positions - 1) .. positions - 1 (index r + positions - 1),
    as transformers' MPNetEncoder.relative_position_bucket computes it, in float32: half the
    buckets for each direction, exact up to a quarter of them, log-spaced up to MAX_DISTANCE."""
    relative = np.arange(-(positions - 1), positions, dtype=np.int64)
    n = -relative
    half = buckets // 2
    found = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    exact = half // 2
    with np.errstate(divide="ignore"):
        scaled = (np.log(n.astype(np.float32) / np.float32(exact)) / np.float32(math.log(MAX_DISTANCE / exact))
                  * np.float32(half - exact))
    large = np.minimum(exact + np.where(n < exact, 0, scaled).astype(np.int64), half - 1)
    return (found + np.where(n < exact, n, large)).astype(np.int32)


class MPNetEncoder(Encoder):
    """Token ids (or their embeddings) and attention mask -> hidden states; the relative-position
    bias [1, heads, length, length] is computed once per call and shared by every layer."""

    def make_embeddings(self, config) -> Embeddings:
        self.buckets = tf.constant(bucket_table(config.max_positions, config.relative_buckets))
        return OffsetPositionEmbeddings(config, name="embeddings", dtype=self.dtype_policy)

    def build(self, input_shape=None):
        self.relative_attention_bias = self.add_weight(
            "relative_attention_bias", (self.config.relative_buckets, self.config.num_heads), initializer=initializer())
        super().build(input_shape)

    def attention_bias(self, length: tf.Tensor) -> tf.Tensor:
        index = tf.range(length)
        relative = index[None, :] - index[:, None] + (self.config.max_positions - 1)  # memory - context
        values = tf.gather(tf.cast(self.relative_attention_bias, tf.float32), tf.gather(self.buckets, relative))
        return tf.transpose(values, [2, 0, 1])[None]  # [1, heads, length, length]
