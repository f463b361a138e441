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


def truncate_pair(first: tf.RaggedTensor, second: tf.RaggedTensor, budget: int,
                  strategy: str = "longest_first") -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Two texts' pieces cut to `budget` tokens together, as Hugging Face's tokenizers cut a pair.

    longest_first (their default): when both are longer than half the budget each keeps half (an
    odd token to the longer, to the second when they are equal), else the shorter keeps all and the
    longer the rest. only_first / only_second cut one text only; where that one is too short for
    it, the other is cut too (Hugging Face refuses such a pair with an error)."""
    n1, n2 = first.row_lengths(), second.row_lengths()
    if strategy == "longest_first":
        short, long_ = tf.minimum(n1, n2), tf.maximum(n1, n2)
        both = short > budget // 2
        keep_short = tf.where(both, tf.cast(budget // 2, n1.dtype), short)
        keep_long = tf.where(both, keep_short + budget % 2, budget - short)
        keep_short, keep_long = tf.minimum(keep_short, short), tf.minimum(keep_long, long_)
        first_is_short = n1 <= n2
        k1, k2 = tf.where(first_is_short, keep_short, keep_long), tf.where(first_is_short, keep_long, keep_short)
    elif strategy == "only_first":
        k1 = tf.clip_by_value(budget - n2, 0, n1)
        k2 = tf.minimum(n2, budget - k1)
    else:
        k2 = tf.clip_by_value(budget - n1, 0, n2)
        k1 = tf.minimum(n1, budget - k2)
    return _keep(first, k1), _keep(second, k2)


def _keep(pieces: tf.RaggedTensor, lengths: tf.Tensor) -> tf.RaggedTensor:
    """The first `lengths[i]` tokens of row i."""
    return tf.gather(pieces, tf.ragged.range(tf.zeros_like(lengths), lengths), batch_dims=1)


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


def token_ids(tokenizer, texts: list[str], chunk: int = 2048, pairs: list[str] | None = None) -> list[np.ndarray]:
    """Tokenize once, in vectorised chunks: one int32 array ([CLS] ... [SEP]) per text. A sentence
    pair (a tokenizer of pairs, or a second text per row in `pairs`) is packed, and where the
    checkpoint has token types it is a [2, length] array: the ids, then the types (`length` reads
    either)."""
    ids: list[np.ndarray] = []
    for start in range(0, len(texts), chunk):
        batch = tf.constant(texts[start:start + chunk], dtype=tf.string)
        if pairs is None:
            parts = [p for p in tokenizer.encode(batch) if p is not None]
        else:
            parts = list(tokenizer.tokenize_pairs(batch, tf.constant(pairs[start:start + chunk], dtype=tf.string)))
            parts = parts if tokenizer.token_types else parts[:1]
        values, splits = [p.flat_values.numpy() for p in parts], parts[0].row_splits.numpy()
        for a, b in zip(splits[:-1], splits[1:]):
            ids.append(values[0][a:b] if len(values) == 1 else np.stack([v[a:b] for v in values]))
    return ids


def length(row: np.ndarray) -> int:
    """Tokens in a row of `token_ids`: one text, or a pair with its token types ([2, length])."""
    return row.shape[-1]


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
    (`sorted_batches`); training pads in tf.data. Rows with token types give token_type_ids."""
    width = round_to * math.ceil(max(length(r) for r in rows) / round_to)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int32)
    mask = np.zeros((len(rows), width), dtype=np.int32)
    types = np.zeros((len(rows), width), dtype=np.int32) if rows[0].ndim == 2 else None
    for i, row in enumerate(rows):
        n = length(row)
        input_ids[i, :n] = row[0] if types is not None else row
        mask[i, :n] = 1
        if types is not None:
            types[i, :n] = row[1]
    found = {"input_ids": input_ids, "attention_mask": mask}
    return found if types is None else {**found, "token_type_ids": types}


def sorted_batches(ids: list[np.ndarray], batch_size: int, pad_id: int, xla: bool = False) -> Iterator:
    """(indices, padded batch) in order of length, the fastest order for inference.

    Each batch is padded to exactly its longest text: a forward pass costs little to set up
    per new width (no gradients, no optimizer), so computing fewer padded positions wins
    (4,096 GoEmotions comments: 22.7 s against 24.9 s rounded to 8; docs/BENCHMARKS.md).
    Under XLA, which compiles once per shape, widths are rounded up to 8 as in training."""
    order = np.argsort([length(r) for r in ids], kind="stable")
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        yield index, pad_batch([ids[i] for i in index], pad_id, ROUND_TO if xla else 1)
