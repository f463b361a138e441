"""Training: the tf.data pipeline, history.csv and the callbacks.

Batches are grouped by token length so that little compute goes to padding: each epoch
shuffles the examples, sorts them by length inside windows of many batches, cuts the
windows into batches and shuffles the batches. Every batch is padded only to its own
longest text, rounded up to a multiple of 8 so that few shapes (and graphs) appear. All of
it runs in tf.data ops on the token ids (no Python per batch), so it can feed GPUs.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfclf.run_folder import read_history, write_history

_WINDOW_BATCHES = 50  # batches per sort window: similar lengths, still a random mix of texts
_ROUND_TO = 8


def token_ids(tokenizer, texts: list[str], chunk: int = 2048) -> list[np.ndarray]:
    """Tokenize once, in vectorised chunks: one int32 array ([CLS] ... [SEP]) per text."""
    ids: list[np.ndarray] = []
    for start in range(0, len(texts), chunk):
        ragged = tokenizer.tokenize(tf.constant(texts[start:start + chunk], dtype=tf.string))
        values, splits = ragged.flat_values.numpy(), ragged.row_splits.numpy()
        ids.extend(values[a:b] for a, b in zip(splits[:-1], splits[1:]))
    return ids


def pad_batch(rows: list[np.ndarray], pad_id: int, round_to: int = _ROUND_TO) -> dict[str, np.ndarray]:
    """One batch padded in numpy to its longest row rounded up to `round_to`, for prediction
    (`sorted_batches`); training pads in tf.data."""
    width = round_to * math.ceil(max(len(r) for r in rows) / round_to)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int32)
    mask = np.zeros((len(rows), width), dtype=np.int32)
    for i, row in enumerate(rows):
        input_ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


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
    """index batch -> {input_ids, attention_mask}, padded to the batch's longest sequence rounded
    up to a multiple of _ROUND_TO (few shapes, so few traced graphs).

    The sequences are padded once into one table, so that a batch is a row gather and a slice
    (ragged gathers cost several times as much per batch)."""
    lengths = np.fromiter((len(r) for r in ids), np.int64, len(ids))
    longest = int(lengths.max(initial=1))
    table = np.full((len(ids), _ROUND_TO * math.ceil(longest / _ROUND_TO)), pad_id, np.int32)
    if ids:
        table[np.arange(table.shape[1]) < lengths[:, None]] = np.concatenate(ids)
    table_t, lengths_t = tf.constant(table), tf.constant(lengths)

    def pad(index: tf.Tensor) -> dict[str, tf.Tensor]:
        row_lengths = tf.gather(lengths_t, index)
        width = (tf.reduce_max(row_lengths) + _ROUND_TO - 1) // _ROUND_TO * _ROUND_TO
        return {"input_ids": tf.gather(table_t, index)[:, :width],
                "attention_mask": tf.sequence_mask(row_lengths, width, dtype=tf.int32)}

    return pad


def training_dataset(ids: list[np.ndarray], targets: np.ndarray, batch_size: int, pad_id: int,
                     seed: int) -> tf.data.Dataset:
    """Length-grouped, reshuffled every epoch, padded in parallel, prefetched: no Python per batch."""
    lengths = np.fromiter((len(r) for r in ids), np.int64, len(ids))
    return _with_targets(grouped_index_batches(lengths, batch_size, seed), ids, targets, pad_id)


def inference_batches(ids: list[np.ndarray], batch_size: int, pad_id: int,
                      targets: np.ndarray) -> tf.data.Dataset:
    """Length-sorted validation batches with their targets, for `model.fit(validation_data=...)`."""
    order = np.argsort([len(r) for r in ids], kind="stable").astype(np.int64)
    return _with_targets(tf.data.Dataset.from_tensor_slices(order).batch(batch_size), ids, targets, pad_id)


def _with_targets(index_batches: tf.data.Dataset, ids: list[np.ndarray], targets: np.ndarray,
                  pad_id: int) -> tf.data.Dataset:
    pad, targets_t = padder(ids, pad_id), tf.constant(targets)
    return index_batches.map(lambda index: (pad(index), tf.gather(targets_t, index)),
                             num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def sorted_batches(ids: list[np.ndarray], batch_size: int, pad_id: int, xla: bool = False) -> Iterator:
    """(indices, padded batch) in order of length, the fastest order for inference.

    Each batch is padded to exactly its longest text: a forward pass costs little to set up
    per new width (no gradients, no optimizer), so computing fewer padded positions wins
    (4,096 GoEmotions comments: 22.7 s against 24.9 s rounded to 8; docs/BENCHMARKS.md).
    Under XLA, which compiles once per shape, widths are rounded up to 8 as in training."""
    order = np.argsort([len(r) for r in ids], kind="stable")
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        yield index, pad_batch([ids[i] for i in index], pad_id, _ROUND_TO if xla else 1)


class HistoryCSV(keras.callbacks.Callback):
    """history.csv, rewritten atomically after every epoch, so a crash keeps what was done.

    Rows are keyed by epoch: a resumed run that repeats an epoch replaces its row."""

    def __init__(self, path: Path, resume: bool = False):
        super().__init__()
        self.path = Path(path)
        self.rows: dict[int, dict] = {r["epoch"]: r for r in read_history(self.path)} if resume else {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"})
        self.rows[epoch + 1] = row
        write_history(self.path, [self.rows[k] for k in sorted(self.rows)])


def callbacks(run_dir: Path, monitor: str, patience: int, has_validation: bool, resume: bool = False,
              history_csv: bool = True) -> list:
    """Best weights and early stopping on the validation metric, a backup for resuming, TensorBoard,
    history.csv (not on a multi-worker job's non-chief workers; Keras's own callbacks write those
    workers' files to scratch folders it removes). Order matters for a kill at any moment: the
    checkpoint of an epoch is written before its backup, and the backup before its history row."""
    best_so_far = max((r[monitor] for r in read_history(run_dir / "history.csv") if monitor in r),
                      default=None) if resume else None
    found = []
    if has_validation:
        found += [
            keras.callbacks.ModelCheckpoint(str(run_dir / "checkpoints" / "best"), monitor=monitor, mode="max",
                                            save_best_only=True, save_weights_only=True, verbose=0,
                                            initial_value_threshold=best_so_far),
            keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=patience, verbose=1,
                                          baseline=best_so_far),
        ]
    found.append(keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False))
    if history_csv:
        found.append(HistoryCSV(run_dir / "history.csv", resume=resume))
    found.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), update_freq="epoch"))
    return found
