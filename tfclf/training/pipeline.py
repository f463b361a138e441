"""The tf.data pipeline that feeds training (and validation during model.fit).

Batches are grouped by token length so that little compute goes to padding: each epoch
shuffles the examples, sorts them by length inside windows of many batches, cuts the
windows into batches and shuffles the batches. Every batch is padded only to its own
longest text, rounded up to a multiple of 8 so that few shapes (and graphs) appear. All of
it runs in tf.data ops on the token ids (no Python per batch), so it can feed GPUs.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import tensorflow as tf

from tfclf.text.sequences import ROUND_TO, length

_WINDOW_BATCHES = 50  # batches per sort window: similar lengths, still a random mix of texts


def count_batches(n: int, batch_size: int) -> int:
    """Batches in an epoch: sort windows hold whole batches, so only the last batch is short."""
    return math.ceil(n / batch_size)


def grouped_index_batches(lengths: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """Index batches of similar lengths in random order, every example once, drawn anew each
    time the dataset is iterated (each epoch) and the same for the same seed (every worker of a
    multi-worker job draws the same batches, and each keeps its share).

    Each epoch is a few vectorised ops: the examples are shuffled, sorted by length inside
    windows of _WINDOW_BATCHES batches (similar lengths, still a random mix of texts), cut
    into batches, and the batches shuffled."""
    n = len(lengths)
    window, batches = batch_size * _WINDOW_BATCHES, count_batches(n, batch_size)
    lengths_t = tf.constant(lengths, tf.int64)
    splits = tf.constant(np.append(np.arange(0, n, batch_size), n), tf.int64)  # all full but the last

    def epoch(epoch_seed: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.index_shuffle(tf.range(n, dtype=tf.int64), [epoch_seed, 0], n - 1) \
            if n > 1 else tf.range(n, dtype=tf.int64)
        # one stable sort by (window, length): windows stay in place, lengths sort inside each
        key = tf.range(n, dtype=tf.int64) // window * (tf.reduce_max(lengths_t) + 1) + tf.gather(lengths_t, order)
        ordered = tf.RaggedTensor.from_row_splits(tf.gather(order, tf.argsort(key, stable=True)), splits)
        shuffled = tf.random.experimental.index_shuffle(tf.range(batches, dtype=tf.int64), [epoch_seed, 1],
                                                        batches - 1) if batches > 1 else tf.range(batches, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices(tf.gather(ordered, shuffled))

    return (tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1).flat_map(epoch)
            .apply(tf.data.experimental.assert_cardinality(batches)))


def padder(ids: list[np.ndarray], pad_id: int) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """index batch -> {input_ids, attention_mask} (and token_type_ids for pairs with token types:
    rows of [2, length]), padded to the batch's longest sequence rounded up to a multiple of
    ROUND_TO (few shapes, so few traced graphs).

    The sequences are padded once into one table, so that a batch is a row gather and a slice
    (ragged gathers cost several times as much per batch)."""
    lengths = np.fromiter((length(r) for r in ids), np.int64, len(ids))
    longest = int(lengths.max(initial=1))
    typed = bool(ids) and ids[0].ndim == 2
    tables = {}
    for name, part, fill in (("input_ids", 0, pad_id), ("token_type_ids", 1, 0))[:2 if typed else 1]:
        table = np.full((len(ids), ROUND_TO * math.ceil(longest / ROUND_TO)), fill, np.int32)
        if ids:
            table[np.arange(table.shape[1]) < lengths[:, None]] = np.concatenate([r[part] if typed else r for r in ids])
        tables[name] = tf.constant(table)
    lengths_t = tf.constant(lengths)

    def pad(index: tf.Tensor) -> dict[str, tf.Tensor]:
        row_lengths = tf.gather(lengths_t, index)
        width = (tf.reduce_max(row_lengths) + ROUND_TO - 1) // ROUND_TO * ROUND_TO
        found = {name: tf.gather(table, index)[:, :width] for name, table in tables.items()}
        return {**found, "attention_mask": tf.sequence_mask(row_lengths, width, dtype=tf.int32)}

    return pad


def training_dataset(ids: list[np.ndarray], targets: np.ndarray, batch_size: int, pad_id: int,
                     seed: int) -> tf.data.Dataset:
    """Length-grouped, reshuffled every epoch, padded in parallel, prefetched: no Python per batch."""
    lengths = np.fromiter((length(r) for r in ids), np.int64, len(ids))
    return _with_targets(grouped_index_batches(lengths, batch_size, seed), ids, targets, pad_id)


def inference_batches(ids: list[np.ndarray], batch_size: int, pad_id: int,
                      targets: np.ndarray) -> tf.data.Dataset:
    """Length-sorted validation batches with their targets, for `model.fit(validation_data=...)`."""
    order = np.argsort([length(r) for r in ids], kind="stable").astype(np.int64)
    return _with_targets(tf.data.Dataset.from_tensor_slices(order).batch(batch_size), ids, targets, pad_id)


def _with_targets(index_batches: tf.data.Dataset, ids: list[np.ndarray], targets: np.ndarray,
                  pad_id: int) -> tf.data.Dataset:
    pad, targets_t = padder(ids, pad_id), tf.constant(targets)
    return index_batches.map(lambda index: (pad(index), tf.gather(targets_t, index)),
                             num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
