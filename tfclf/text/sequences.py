"""Token sequences: truncation, chunks of long documents, token ids per text, and padded batches.

What is computed on token ids, after WordPiece (wordpiece.py) and before a model: the
truncation strategies and chunking run in the TensorFlow graph (the SavedModel does them
too); ids per text and prediction batches are numpy, for the Python side.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import tensorflow as tf

ROUND_TO = 8  # training batches (and XLA's prediction batches) are padded to a multiple of this


def truncate(pieces: tf.RaggedTensor, budget: int, strategy: str = "head") -> tf.RaggedTensor:
    """Keep at most `budget` tokens of each row: the first, the last, or both ends.

    head+tail keeps the first quarter and the last three quarters of the budget, the
    proportion of Sun et al. (128 + 382 at 512).
    """
    lengths = pieces.row_lengths()
    if strategy == "head":
        return pieces[:, :budget]
    if strategy == "tail":
        start = tf.maximum(lengths - budget, 0)
        keep = tf.ragged.range(start, lengths)
        return tf.gather(pieces, keep, batch_dims=1)
    head = round(budget * 128 / 510)
    tail = budget - head
    long = lengths > budget
    # Rows within budget keep everything; longer rows keep [0, head) and [len - tail, len).
    first = tf.ragged.range(tf.zeros_like(lengths), tf.where(long, head, lengths))
    last = tf.ragged.range(tf.where(long, lengths - tail, lengths), lengths)
    return tf.gather(pieces, tf.concat([first, last], axis=1), batch_dims=1)


def split_into_chunks(pieces: tf.RaggedTensor, size: int, overlap: int = 0) -> tf.RaggedTensor:
    """[docs, (tokens)] -> [docs, (chunks), (tokens)]: windows of `size` tokens, `size - overlap` apart.

    Chunks stay in document order, so a document's rows of the result are its chunks, first to last."""
    step = size - overlap
    lengths = pieces.row_lengths()
    counts = (tf.maximum(lengths - overlap, 1) + step - 1) // step  # at least one chunk per document
    starts = tf.ragged.range(tf.zeros_like(counts), counts * step, step)
    doc = starts.value_rowids()
    begin = starts.flat_values + tf.gather(pieces.row_splits[:-1], doc)  # offsets into the flat values
    end = tf.minimum(starts.flat_values + size, tf.gather(lengths, doc)) + tf.gather(pieces.row_splits[:-1], doc)
    tokens = tf.gather(pieces.flat_values, tf.ragged.range(begin, end))
    return tf.RaggedTensor.from_row_lengths(tokens, counts)


def token_ids(tokenizer, texts: list[str], chunk: int = 2048) -> list[np.ndarray]:
    """Tokenize once, in vectorised chunks: one int32 array ([CLS] ... [SEP]) per text."""
    ids: list[np.ndarray] = []
    for start in range(0, len(texts), chunk):
        ragged = tokenizer.tokenize(tf.constant(texts[start:start + chunk], dtype=tf.string))
        values, splits = ragged.flat_values.numpy(), ragged.row_splits.numpy()
        ids.extend(values[a:b] for a, b in zip(splits[:-1], splits[1:]))
    return ids


def count_chunks(tokenizer, texts: list[str], chunk: int = 512) -> int:
    """How many chunks `chunk_token_ids` gives `texts`: counted in the graph, no ids kept."""
    return sum(int(tokenizer.chunks(tf.constant(texts[start:start + chunk], dtype=tf.string)).values.nrows())
               for start in range(0, len(texts), chunk))


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


def pad_batch(rows: list[np.ndarray], pad_id: int, round_to: int = ROUND_TO) -> dict[str, np.ndarray]:
    """One batch padded in numpy to its longest row rounded up to `round_to`, for prediction
    (`sorted_batches`); training pads in tf.data."""
    width = round_to * math.ceil(max(len(r) for r in rows) / round_to)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int32)
    mask = np.zeros((len(rows), width), dtype=np.int32)
    for i, row in enumerate(rows):
        input_ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def sorted_batches(ids: list[np.ndarray], batch_size: int, pad_id: int, xla: bool = False) -> Iterator:
    """(indices, padded batch) in order of length, the fastest order for inference.

    Each batch is padded to exactly its longest text: a forward pass costs little to set up
    per new width (no gradients, no optimizer), so computing fewer padded positions wins
    (4,096 GoEmotions comments: 22.7 s against 24.9 s rounded to 8; docs/BENCHMARKS.md).
    Under XLA, which compiles once per shape, widths are rounded up to 8 as in training."""
    order = np.argsort([len(r) for r in ids], kind="stable")
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        yield index, pad_batch([ids[i] for i in index], pad_id, ROUND_TO if xla else 1)
