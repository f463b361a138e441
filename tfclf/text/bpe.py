"""Byte-level BPE (GPT-2's, as RoBERTa's tokenizer uses it) inside the TensorFlow graph.

tensorflow-text has no op for it, so its three steps are spelled out with TensorFlow ops, to give
the ids of Hugging Face's `tokenizers` (ByteLevel pre-tokenizer and decoder, BPE model):
1. GPT-2's split, `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`.
   RE2 has no lookahead, so the pattern is read as where its words start, which depends on three
   characters at most (`starts`): a change of class (letter, number, space, other) starts a
   word, except after a single " " (which joins the word after it) and inside a contraction;
   in a run of spaces followed by a non-space, the run's last character starts a word.
2. Each word's UTF-8 bytes as GPT-2's printable characters (`byte_alphabet`).
3. BPE: while a word has a pair of symbols in merges.txt, the lowest-ranked pair is merged,
   at every place it occurs, left to right (`merge`): all words at once, one rank a step.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import tensorflow as tf

from tfclf.errors import TfclfError
from tfclf.storage.atomic import atomic_write_text, read_json_object
from tfclf.text.packing import WHITE_SPACE, InGraphTokenizer, in_id_order, read_settings, special_tokens_of

LETTER, NUMBER, SPACE, OTHER = 0, 1, 2, 3
CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")  # after an apostrophe, lowercase only
NO_RANK = 2 ** 31 - 1


@functools.lru_cache(maxsize=1)
def byte_alphabet() -> tuple[str, ...]:
    """GPT-2's bytes_to_unicode: the printable bytes stand for themselves, the others for the
    characters from U+0100 on, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return tuple(chars[b] for b in range(256))


@functools.lru_cache(maxsize=1)
def _byte_of() -> dict[str, int]:
    """byte_alphabet reversed: the byte each of GPT-2's characters stands for."""
    return {c: b for b, c in enumerate(byte_alphabet())}


@dataclasses.dataclass(frozen=True)
class BytePairSpec:
    """What the in-graph byte-level BPE needs from a checkpoint: vocabulary, merges, special tokens."""

    vocab: tuple[str, ...]  # in id order
    merges: tuple[str, ...]  # "left right", by rank
    cls_token: str = "<s>"
    sep_token: str = "</s>"
    pad_token: str = "<pad>"
    unk_token: str = "<unk>"
    mask_token: str = "<mask>"
    lstrip: tuple[str, ...] = ("<mask>",)  # special tokens that take the whitespace before them
    add_prefix_space: bool = False
    pairs: str = "roberta"
    token_types: bool = False
    tokenizer_class: str = "RobertaTokenizer"

    # Computed once a spec (cached_property writes the instance's __dict__, which a frozen
    # dataclass allows): continues_word asks for special_tokens once a piece, and pretraining
    # asks once a vocabulary entry; rebuilt each time, 50,000 entries made that quadratic.
    @functools.cached_property
    def ids(self) -> dict[str, int]:
        """Each token's id."""
        return {t: i for i, t in enumerate(self.vocab)}

    @functools.cached_property
    def special_tokens(self) -> tuple[str, ...]:
        named = (self.cls_token, self.sep_token, self.pad_token, self.unk_token, self.mask_token)
        return tuple(dict.fromkeys(t for t in named if t in self.ids))

    def token_id(self, token: str) -> int:
        return self.ids[token]

    SPACE_MARK = "\u0120"  # Ġ: the byte " " in GPT-2's alphabet; a piece without it continues a word

    def continues_word(self, piece: str) -> bool:
        return not piece.startswith(self.SPACE_MARK) and piece not in self.special_tokens

    def word_of(self, piece: str) -> str:
        """The text a piece stands for (its bytes, decoded)."""
        table = _byte_of()
        if piece in self.special_tokens or any(c not in table for c in piece):
            return piece
        return bytes(table[c] for c in piece).decode("utf-8", errors="replace").strip()

    @classmethod
    def from_directory(cls, path: str | Path, pairs: str = "roberta", tokenizer_class: str = "RobertaTokenizer",
                       token_types: bool = False) -> "BytePairSpec":
        """vocab.json and merges.txt (or tokenizer.json's model) and the special tokens of a folder."""
        path = Path(path)
        settings = read_settings(path)
        found = read_json_object(path / "tokenizer.json", "tokenizer.json") if (path / "tokenizer.json").is_file() \
            else {}
        if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
            vocab = read_json_object(path / "vocab.json", "vocab.json")
            lines = (path / "merges.txt").read_text(encoding="utf-8").split("\n")
            merges = [line for line in lines if line and not line.startswith("#version")]
        elif found:
            model = found.get("model", {})
            if model.get("type") != "BPE":
                raise TfclfError(f"{path}/tokenizer.json: a BPE model expected, found {model.get('type')!r}")
            vocab = model["vocab"]
            merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
        else:
            raise TfclfError(f"{path}: no vocab.json and merges.txt (nor tokenizer.json); a byte-level BPE "
                             f"checkpoint is needed")
        tokens = special_tokens_of(settings)
        mask = tokens.get("mask_token") or cls.mask_token
        spec = cls(in_id_order(vocab), tuple(merges), **{k: v for k, v in tokens.items() if v},
                   lstrip=(mask,) if _strips_left(found, settings, mask) else (),
                   add_prefix_space=bool(settings.get("add_prefix_space", False)), pairs=pairs,
                   token_types=token_types, tokenizer_class=tokenizer_class)
        missing = [t for t in (spec.cls_token, spec.sep_token, spec.pad_token) if t not in spec.ids]
        if missing:
            raise TfclfError(f"{path}: the vocabulary lacks the special tokens {missing}")
        return spec

    def save(self, path: str | Path) -> None:
        """vocab.json, merges.txt and tokenizer_config.json, as Hugging Face writes a RobertaTokenizer's."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path / "vocab.json", json.dumps({t: i for i, t in enumerate(self.vocab)}, ensure_ascii=False))
        atomic_write_text(path / "merges.txt", "#version: 0.2\n" + "".join(m + "\n" for m in self.merges))
        settings = {"cls_token": self.cls_token, "sep_token": self.sep_token, "pad_token": self.pad_token,
                    "unk_token": self.unk_token, "bos_token": self.cls_token, "eos_token": self.sep_token,
                    "mask_token": self.mask_token, "add_prefix_space": self.add_prefix_space,
                    "tokenizer_class": self.tokenizer_class,
                    "added_tokens_decoder": {str(self.token_id(t)): {
                        "content": t, "lstrip": t in self.lstrip, "normalized": False, "rstrip": False,
                        "single_word": False, "special": True} for t in self.special_tokens}}
        atomic_write_text(path / "tokenizer_config.json", json.dumps(settings, indent=2))


def _strips_left(tokenizer_json: dict, settings: dict, token: str) -> bool:
    """Whether `token` takes the whitespace before it: as tokenizer.json's added_tokens or
    tokenizer_config.json's added_tokens_decoder (or the token's own entry) say, else as
    RobertaTokenizer makes its <mask> (lstrip)."""
    found = [t for t in settings.get("added_tokens_decoder", {}).values() if isinstance(t, dict)]
    found += tokenizer_json.get("added_tokens", [])
    mentioned = settings.get("mask_token")
    found += [mentioned] if isinstance(mentioned, dict) else []
    flags = [bool(t.get("lstrip")) for t in found if isinstance(t, dict) and t.get("content") == token]
    return flags[-1] if flags else True


def _shift(values: tf.Tensor, by: int, first: tf.Tensor, fill) -> tf.Tensor:
    """values[i - by] within each row (`fill` where that is before the row's start); `first` marks
    each row's first element. `by` < 0 looks ahead: values[i + |by|], `fill` past the row's end."""
    n = tf.shape(values)[0]
    index = tf.range(n) - by
    inside = (index >= 0) & (index < n)
    shifted = tf.where(inside, tf.gather(values, tf.clip_by_value(index, 0, tf.maximum(n - 1, 0))), fill)
    # crossing a row boundary: a row's start is `first`; going back from it, or ahead into the next
    starts = tf.cumsum(tf.cast(first, tf.int32))  # row number (1-based) of every element
    same_row = tf.where(inside, tf.gather(starts, tf.clip_by_value(index, 0, tf.maximum(n - 1, 0))), -1)
    return tf.where(same_row == starts, shifted, fill)


def _segment_ids(splits: tf.Tensor) -> tf.Tensor:
    """The row of every value, from row splits. RaggedTensor.value_rowids (tf.repeat) pads every
    row to the longest one first: 20,000 words beside a 100,000-byte one would be 2e9 elements."""
    splits = tf.cast(splits, tf.int32)
    n = splits[-1]
    return tf.cumsum(tf.math.bincount(splits[1:-1], minlength=n, maxlength=n))


def _firsts(splits: tf.Tensor, row: tf.Tensor) -> tf.Tensor:
    """Whether each value is its row's first, from row splits and each value's row (_segment_ids)."""
    splits = tf.cast(splits, tf.int32)
    return tf.equal(tf.range(splits[-1]), tf.gather(splits, row))


def starts(chars: tf.RaggedTensor) -> tf.Tensor:
    """Where GPT-2's split starts a word: [total characters] bool, for characters [texts, (chars)]."""
    flat = chars.flat_values
    first = _firsts(chars.row_splits, _segment_ids(chars.row_splits))
    cls = tf.where(tf.strings.regex_full_match(flat, r"\p{L}"), LETTER,
                   tf.where(tf.strings.regex_full_match(flat, r"\p{N}"), NUMBER,
                            tf.where(tf.strings.regex_full_match(flat, WHITE_SPACE), SPACE, OTHER)))
    prev_cls, next_cls = _shift(cls, 1, first, -1), _shift(cls, -1, first, -1)
    prev_char = _shift(flat, 1, first, "")
    # an apostrophe starts a contraction where it starts a word of its own: not after another
    # "other" character (it continues their run) nor after " " (which it joins)
    apostrophe = tf.equal(flat, "'") & tf.not_equal(prev_cls, OTHER) & tf.not_equal(prev_char, " ")
    after = [_shift(flat, -k, first, "") for k in (1, 2)]
    length = tf.zeros_like(cls)
    for ending in CONTRACTIONS:
        found = apostrophe & (length == 0)
        for k, letter in enumerate(ending):
            found &= tf.equal(after[k], letter)
        length = tf.where(found, len(ending) + 1, length)
    inside = tf.zeros_like(first)
    for k in (1, 2):  # the characters a contraction covers after its apostrophe
        inside |= _shift(length, k, first, 0) > k
    ended = (_shift(length, 2, first, 0) == 2) | (_shift(length, 3, first, 0) == 3)
    change = tf.not_equal(cls, prev_cls) & ~(tf.equal(prev_char, " ") & tf.not_equal(cls, SPACE))
    last_space = tf.equal(cls, SPACE) & tf.equal(prev_cls, SPACE) & (next_cls >= 0) & tf.not_equal(next_cls, SPACE)
    return first | ended | (~inside & (change | last_space))


class BytePairTokenizer(InGraphTokenizer):
    """Byte-level BPE, RoBERTa's tokenizer (packing.py does the special tokens, truncation, pairs,
    chunks and padding)."""

    def __init__(self, spec: BytePairSpec, max_length: int = 128, truncation: str = "head",
                 chunk_stride: int = 0, max_chunks: int = 16, pair_truncation: str = "longest_first",
                 pairs: bool = False):
        super().__init__(spec, max_length, truncation, chunk_stride, max_chunks, pair_truncation, pairs,
                         name="byte_pair_tokenizer")
        table = lambda keys, values, default: tf.lookup.StaticHashTable(  # noqa: E731
            tf.lookup.KeyValueTensorInitializer(keys, values, tf.string, tf.int32), default_value=default)
        # a table cannot be empty: without merges (a vocabulary of bytes) it holds "", which no
        # pair of symbols joins to
        merges = list(spec.merges) or [""]
        self._ranks = table(merges, list(range(len(merges))), NO_RANK)
        self._ids = table(list(spec.vocab), list(range(len(spec.vocab))), -1)
        self._bytes = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            [bytes([b]) for b in range(256)], list(byte_alphabet()), tf.string, tf.string), default_value="")
        self._unk = spec.ids.get(spec.unk_token, -1)

    def words(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """GPT-2's split: [texts, (words)], each word as its bytes in GPT-2's alphabet, [.., (symbols)]."""
        if self.spec.add_prefix_space:
            texts = tf.where(tf.strings.regex_full_match(texts, " .*|"), texts, tf.strings.join([" ", texts]))
        chars = tf.strings.unicode_split(texts, "UTF-8")
        begins = starts(chars)
        word_of_char = tf.cumsum(tf.cast(begins, tf.int32)) - 1
        words = tf.strings.unsorted_segment_join(chars.flat_values, word_of_char,
                                                 tf.reduce_sum(tf.cast(begins, tf.int32)))
        rows = tf.boolean_mask(_segment_ids(chars.row_splits), begins)  # the text of each word
        per_text = tf.math.bincount(rows, minlength=tf.shape(texts)[0], dtype=tf.int64)
        symbols = tf.strings.bytes_split(words)
        symbols = symbols.with_flat_values(self._bytes.lookup(symbols.flat_values))
        return tf.RaggedTensor.from_row_lengths(symbols, per_text)

    def _pieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
        words = self.words(texts)
        merged = merge(words.values, self._ranks)
        ids = self._ids.lookup(merged.flat_values)
        ids = tf.where(ids >= 0, ids, self._unk)  # a symbol outside the vocabulary: unk, or dropped without one
        known = ids >= 0
        lengths = tf.math.unsorted_segment_sum(tf.cast(known, tf.int64), _segment_ids(merged.row_splits),
                                               tf.shape(merged.row_splits)[0] - 1)
        kept = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(ids, known), lengths)
        return words.with_values(kept).merge_dims(1, 2)


def merge(symbols: tf.RaggedTensor, ranks: tf.lookup.StaticHashTable) -> tf.RaggedTensor:
    """BPE on every word at once: [words, (symbols)] -> [words, (pieces)]. Each step merges each
    word's lowest-ranked pair wherever it occurs (left to right where occurrences overlap, "a a a"
    -> "aa a"), until no pair of any word is in merges.txt. Flat tensors throughout: a ragged
    reduction pads to the longest word, and a word can be 100,000 bytes."""
    def step(values, lengths, _):
        words = tf.size(lengths)
        splits = tf.concat([[0], tf.cumsum(tf.cast(lengths, tf.int32))], 0)
        row = _segment_ids(splits)
        first = _firsts(splits, row)
        following = _shift(values, -1, first, "")
        last = tf.equal(_shift(tf.ones_like(row), -1, first, 0), 0)
        rank = tf.where(last, NO_RANK, ranks.lookup(tf.strings.join([values, following], " ")))
        best = tf.math.unsorted_segment_min(rank, row, words)
        hit = tf.equal(rank, tf.gather(best, row)) & tf.not_equal(rank, NO_RANK)
        # runs of overlapping hits merge at every other place from the run's start
        run_start = hit & ~_shift(hit, 1, first, False)
        index = tf.range(tf.size(values))
        run = tf.maximum(tf.cumsum(tf.cast(run_start, tf.int32)) - 1, 0)
        begin = tf.gather(tf.concat([tf.cast(tf.where(run_start)[:, 0], tf.int32), [0]], 0), run)
        take = hit & tf.equal((index - begin) % 2, 0)
        # symbol k takes in symbol k + 1 where pair k is taken; symbol k + 1 is then dropped
        dropped = _shift(take, 1, first, False)
        values = tf.boolean_mask(tf.where(take, tf.strings.join([values, following]), values), ~dropped)
        lengths = lengths - tf.math.unsorted_segment_sum(tf.cast(take, lengths.dtype), row, words)
        return values, lengths, tf.reduce_any(take)

    values, lengths, _ = tf.while_loop(lambda v, n, more: more, step,
                                       (symbols.flat_values, symbols.row_lengths(), tf.constant(True)),
                                       shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]),
                                                         tf.TensorShape([])))
    return tf.RaggedTensor.from_row_lengths(values, lengths)
