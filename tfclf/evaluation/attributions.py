"""Why the model gave a label: integrated gradients over the input embeddings.

Integrated gradients (Sundararajan et al., 2017) scores each word piece by the gradient of
the label's logit, averaged along the straight path from a baseline input to the text, times
how far the piece's embedding is from its baseline. The scores add up to the logit of the
text minus the logit of the baseline (completeness); how far they miss is reported as the
completeness gap, the check that enough steps were taken.

The baseline is the same sequence with every word piece replaced by [PAD], keeping [CLS],
[SEP], the positions and the attention mask: the model has learnt to ignore [PAD], so the
baseline is "the same length, no words". Zero vectors (the other common choice) are no token
the model has seen, and after the embedding LayerNorm they are not near any input it has.

The path integral uses the Clenshaw-Curtis rule rather than a Riemann sum: its nodes
include both ends (the forward pass at the text and at the baseline gives their logits, with
no pass of its own), and doubling the intervals keeps every node, so refining costs only the
new nodes. It starts with DEFAULT_STEPS intervals (17 gradient evaluations); a text whose
scores still miss the logit difference by over 5 % gets twice the intervals, up to
MAX_REFINEMENTS times (17 -> 33 -> 65 evaluations), and the intervals used are recorded.
On MiniLM classifiers of movie reviews that was 24 evaluations a 128-token text on average,
where 32 Gauss-Legendre points and a pass for the two ends (the first version) spent 34 on
every text, and redid the few over 5 % with 64 (docs/BENCHMARKS.md). Points run in
batches, so memory stays bounded on long texts.

For two-stage (hierarchical) runs the same method runs twice: over the chunk embeddings that
stage 2 reads (baseline: zero embeddings with the mask kept, "chunks that say nothing"),
which gives how much each chunk carried the decision, then over the word pieces of the top
chunks through stage 1 (the chunk classifier, trained on the document's labels).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfclf.models.heads import embedding_forward

PAIR_WORD = "\u2016"  # between the two texts of a sentence pair, in tokens and words
DEFAULT_STEPS = 16  # intervals of the path: 17 gradient evaluations, both ends included
MAX_REFINEMENTS = 2  # a text whose gap is over MAX_GAP gets twice the intervals, at most this often
MAX_GAP = 0.05
STEPS_PER_CALL = 32  # interpolation points per forward and backward pass


@dataclasses.dataclass
class LabelAttribution:
    """One label's attributions for one text: word pieces, words (pieces merged), and the logits."""
    label: str
    tokens: list[str]
    token_scores: list[float]
    words: list[str]
    word_scores: list[float]
    logit: float  # of the label's score (the negated logit for a binary model's negative class)
    baseline_logit: float
    steps: int = DEFAULT_STEPS  # intervals of the path integral used (steps + 1 gradient evaluations)
    chunk_scores: list[float] | None = None  # hierarchical runs: per chunk, in document order
    chunk: int | None = None  # hierarchical runs: the chunk whose tokens are shown

    @property
    def completeness_gap(self) -> float:
        """|sum of scores - (logit - baseline logit)|, relative to that difference."""
        total = float(np.sum(self.chunk_scores if self.chunk_scores is not None else self.token_scores))
        difference = self.logit - self.baseline_logit
        return abs(total - difference) / max(abs(difference), 1e-6)

    def to_json(self) -> dict:
        found = dataclasses.asdict(self)
        found["completeness_gap"] = self.completeness_gap
        return found


def clenshaw_curtis(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The steps + 1 Clenshaw-Curtis nodes on [0, 1], from 1 (the text) down to 0 (the baseline),
    and their weights, summing to 1. The nodes for 2 * steps are these and one between each pair."""
    k = np.arange(steps + 1)
    j = np.arange(1, steps // 2 + 1)
    halves = np.where(2 * j == steps, 1.0, 2.0) / (4.0 * j ** 2 - 1)
    inner = 1 - (halves * np.cos(2 * np.pi * np.outer(k, j) / steps)).sum(axis=1)
    weights = np.where((k == 0) | (k == steps), 1.0, 2.0) / steps * inner / 2
    return ((np.cos(np.pi * k / steps) + 1) / 2).astype(np.float32), weights


class PathIntegral:
    """Integrated gradients of `forward(inputs, mask) -> logits` with respect to `inputs` [L, H],
    traced once per object for any length."""

    def __init__(self, forward: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]):
        spec = tf.TensorSpec([None, None], tf.float32)
        self._forward = forward
        self._gradients = tf.function(self._path_gradients, autograph=False, input_signature=[
            spec, spec, tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32), tf.TensorSpec([None], tf.int32)])

    def _path_gradients(self, x, base, mask, alphas, unit, sign, types):
        """Per path point: each input row's (x - base) . gradient, and the score there."""
        path = base[None] + alphas[:, None, None] * (x - base)[None]
        masks = tf.tile(mask[None], [tf.shape(alphas)[0], 1])
        types = tf.tile(types[None], [tf.shape(alphas)[0], 1])  # a pair's token types (zeros otherwise)
        # only the path is watched: the weights' gradients are not needed (skipping them made no
        # measurable difference in speed on MiniLM, so the cost is the backward pass through the inputs)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(path)
            score = sign * self._forward(path, masks, types)[:, unit]
        grads = tape.gradient(score, path)
        return tf.reduce_sum((x - base)[None] * grads, axis=-1), score

    def __call__(self, x: np.ndarray, base: np.ndarray, mask: np.ndarray, unit: int, sign: float,
                 steps: int, types: np.ndarray | None = None) -> tuple[np.ndarray, float, float, int]:
        """(scores per input row, score of x, score of the baseline, intervals used): the
        intervals doubled, keeping the points done, while the scores miss the difference by
        over MAX_GAP (at most MAX_REFINEMENTS times)."""
        self._types = np.zeros(len(mask), np.int32) if types is None else np.asarray(types, np.int32)
        nodes, weights = clenshaw_curtis(steps)
        points, ends = self._at(x, base, mask, nodes, unit, sign)
        logit, baseline = float(ends[0]), float(ends[-1])
        for refinement in range(MAX_REFINEMENTS + 1):
            scores = (weights @ points).astype(np.float32)
            if refinement == MAX_REFINEMENTS or \
                    abs(scores.sum() - (logit - baseline)) <= MAX_GAP * max(abs(logit - baseline), 1e-6):
                break
            steps *= 2
            nodes, weights = clenshaw_curtis(steps)
            finer = np.empty((steps + 1, len(x)), np.float32)
            finer[0::2], finer[1::2] = points, self._at(x, base, mask, nodes[1::2], unit, sign)[0]
            points = finer
        return scores, logit, baseline, steps

    def _at(self, x, base, mask, alphas, unit, sign) -> tuple[np.ndarray, np.ndarray]:
        """Per path point (alpha): the rows' scores [points, rows] and the score, in batches."""
        parts = [self._gradients(x, base, mask, alphas[start:start + STEPS_PER_CALL], unit, sign, self._types)
                 for start in range(0, len(alphas), STEPS_PER_CALL)]
        return np.concatenate([p[0].numpy() for p in parts]), np.concatenate([p[1].numpy() for p in parts])


class Explainer:
    """Attributions for a trained one-stage classifier (and stage 1 of a two-stage one)."""

    def __init__(self, classifier: keras.Model, spec, pad_id: int, special_ids: set[int]):
        """`spec`: the tokenizer's (text/wordpiece.py TokenizerSpec): its vocabulary and word rule."""
        self.classifier = classifier
        self.table, forward = embedding_forward(classifier)
        self.integral = PathIntegral(forward)
        self.vocab, self.pad_id, self.special_ids = spec.vocab, pad_id, special_ids
        self.continues_word, self.word_of = spec.continues_word, spec.word_of

    def tokens(self, ids: np.ndarray, unit: int, sign: float, steps: int):
        """(scores per piece, logit, baseline logit, steps) of one token-id sequence with its special
        tokens; a pair with token types is [2, length] (text/sequences.py `token_ids`)."""
        ids, types = (ids[0], ids[1]) if ids.ndim == 2 else (ids, None)
        base_ids = np.where(np.isin(ids, list(self.special_ids)), ids, self.pad_id)
        x, base = tf.gather(self.table, ids).numpy(), tf.gather(self.table, base_ids).numpy()
        return self.integral(x, base, np.ones(len(ids), np.int32), unit, sign, steps, types)

    def explain(self, ids: np.ndarray, label: str, unit: int, sign: float, steps: int,
                pair: bool = False) -> LabelAttribution:
        """A sentence pair's words are those of both texts, with PAIR_WORD between them (scored 0)."""
        scores, logit, baseline, used = self.tokens(ids, unit, sign, steps)
        ids = ids[0] if ids.ndim == 2 else ids
        special = np.isin(ids, list(self.special_ids))
        tokens, token_scores = [], []
        for i, (token_id, score) in enumerate(zip(ids, scores)):
            if not special[i]:
                tokens.append(self.vocab[token_id])
                token_scores.append(float(score))
            elif pair and 0 < i < len(ids) - 1 and not special[i - 1]:  # the end of the first text
                tokens.append(PAIR_WORD)
                token_scores.append(0.0)
        words, word_scores = merge_pieces(tokens, np.asarray(token_scores), self.continues_word, self.word_of)
        return LabelAttribution(label, tokens, token_scores, words, word_scores, logit, baseline, used)


def merge_pieces(tokens: list[str], scores: np.ndarray, continues_word=lambda t: t.startswith("##"),
                 word_of=lambda t: t[2:] if t.startswith("##") else t) -> tuple[list[str], list[float]]:
    """Word pieces back into words ("play", "##ing" -> "playing"), each scored by its pieces' sum;
    the tokenizer says which pieces continue a word (text/wordpiece.py `continues_word`)."""
    words: list[str] = []
    totals: list[float] = []
    for token, score in zip(tokens, scores):
        if continues_word(token) and words:
            words[-1] += word_of(token)
            totals[-1] += float(score)
        else:
            words.append(token)
            totals.append(float(score))
    return words, totals


def chunk_integral(doc_model: keras.Model) -> PathIntegral:
    """Integrated gradients of stage 2 over a document's chunk embeddings."""
    def forward(embeddings, mask, types=None):
        return doc_model({"chunk_embeddings": embeddings, "chunk_mask": mask}, training=False)

    return PathIntegral(forward)
