"""What every in-graph tokenizer does around its own word pieces: special tokens written in a
text, the checkpoint's special tokens around one text or a pair, truncation, chunks, padding.

A tokenizer (wordpiece.py, bpe.py) gives `_pieces(texts)`: the ids of each text's ordinary
text; this base class does the rest the same way for every family, in the TensorFlow graph.
"""
from __future__ import annotations

import re
from pathlib import Path

import tensorflow as tf
import tensorflow_text as tf_text

from tfclf.config import PAIR_TRUNCATIONS, TRUNCATIONS
from tfclf.data.examples import PAIR_SEP
from tfclf.errors import TfclfError, option
from tfclf.storage.atomic import read_json_object
from tfclf.text.sequences import split_into_chunks, truncate, truncate_pair

# How each family packs two texts (a spec's `pairs`): BERT's [CLS] a [SEP] b [SEP] with token
# types 0 then 1 (Hugging Face's TemplateProcessing), or RoBERTa's <s> a </s></s> b </s> with one
# type (RobertaProcessing, which MPNet's tokenizer uses too): the separators between the texts.
PAIRS = {"bert": 1, "roberta": 2}

# Unicode's White_Space (Rust's char::is_whitespace, Oniguruma's \s): what Hugging Face strips or
# splits on. RE2's \s is ASCII only.
WHITE_SPACE = r"[\t\n\x0B\x0C\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"

SPECIAL_TOKEN_KEYS = ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token")


def read_settings(path: Path) -> dict:
    """A Hugging Face folder's tokenizer settings: special_tokens_map.json, then
    tokenizer_config.json, which wins (as in Hugging Face)."""
    settings = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        if (path / name).is_file():
            settings.update(read_json_object(path / name, name))
    return settings


def token_text(value) -> str | None:
    """A special token as tokenizer_config.json writes it: a string, or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def special_tokens_of(settings: dict) -> dict[str, str]:
    """The special tokens `settings` name (SPECIAL_TOKEN_KEYS), as the spec's field names."""
    tokens = {k: token_text(settings.get(k)) for k in SPECIAL_TOKEN_KEYS}
    return {k: v for k, v in tokens.items() if v is not None}


def in_id_order(vocab: dict[str, int]) -> tuple[str, ...]:
    """A {token: id} vocabulary (vocab.json, tokenizer.json's model) as its tokens in id order."""
    ordered = [""] * (max(vocab.values()) + 1)
    for token, index in vocab.items():
        ordered[index] = token
    return tuple(ordered)


# regex_split stops a string at a NUL byte: NUL and the escape character are written as two
# characters each while special tokens are split out, and restored after (a noncharacter, so rare
# in text; escaped itself, so a text that has it comes back whole).
_ESCAPE = "\U0010ffff"


def _escape(texts: tf.Tensor) -> tf.Tensor:
    return tf.strings.regex_replace(tf.strings.regex_replace(texts, _ESCAPE, _ESCAPE + "1"), "\x00", _ESCAPE + "0")


def _unescape(texts: tf.Tensor) -> tf.Tensor:
    return tf.strings.regex_replace(tf.strings.regex_replace(texts, _ESCAPE + "0", "\x00"), _ESCAPE + "1", _ESCAPE)


class InGraphTokenizer(tf.Module):
    """Raw strings (or pairs of them) -> token ids with the checkpoint's special tokens, truncated,
    as a ragged tensor.

    `tokenize` keeps every row at its own length (the tf.data pipeline buckets on it);
    `__call__` pads to the longest row of the batch, never further.
    """

    def __init__(self, spec, max_length: int = 128, truncation: str = "head", chunk_stride: int = 0,
                 max_chunks: int = 16, pair_truncation: str = "longest_first", pairs: bool = False,
                 name: str = "tokenizer"):
        super().__init__(name=name)
        if max_length < 3:
            raise TfclfError(f"{option('max_length')} must be at least 3, got {max_length}")
        if truncation not in TRUNCATIONS:
            raise TfclfError(f"{option('truncation')} must be one of {', '.join(TRUNCATIONS)}, got {truncation!r}")
        if not 0 <= chunk_stride < max_length - 2:
            raise TfclfError(f"{option('chunk_stride')} must be between 0 and {option('max_length')} - 3 "
                             f"({max_length - 3}), got {chunk_stride}")
        if max_chunks < 1:
            raise TfclfError(f"{option('max_chunks')} must be at least 1, got {max_chunks}")
        if pair_truncation not in PAIR_TRUNCATIONS:
            raise TfclfError(f"{option('pair_truncation')} must be one of {', '.join(PAIR_TRUNCATIONS)}, "
                             f"got {pair_truncation!r}")
        self.pair_truncation = pair_truncation
        self.pairs = pairs  # each text is a sentence pair, its texts joined by data/examples.py's PAIR_SEP
        self.spec = spec
        self.max_length = max_length
        self.truncation = truncation
        self.chunk_stride = chunk_stride  # tokens shared by consecutive chunks
        self.max_chunks = max_chunks
        self.cls_id = spec.token_id(spec.cls_token)
        self.sep_id = spec.token_id(spec.sep_token)
        self.pad_id = spec.token_id(spec.pad_token)
        specials = spec.special_tokens
        stripped = getattr(spec, "lstrip", ())  # tokens that take the whitespace before them (RoBERTa's <mask>)
        self._special_pattern = "|".join((WHITE_SPACE + "*" if t in stripped else "") + re.escape(t)
                                         for t in specials)
        self._strips = bool(stripped)
        self._special_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(list(specials), [spec.token_id(t) for t in specials],
                                                tf.string, tf.int32), default_value=-1) if specials else None

    def _pieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """The ids of each text's ordinary text (no special token in it): [batch, (pieces)]."""
        raise NotImplementedError

    def word_pieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Token ids of each text, untruncated and without the special tokens around it:
        [batch, (tokens)]. A special token written in the text ("a [MASK] b") is that token, as
        in Hugging Face; the text around it is tokenized as usual.

        Bytes that are not UTF-8 (and surrogates encoded as if they were) become U+FFFD first,
        as data/examples.clean_text does in Python, so a client that sends raw bytes to the
        SavedModel gets the ids `predict` gives."""
        texts = tf.strings.unicode_transcode(tf.convert_to_tensor(texts, tf.string), "UTF-8", "UTF-8",
                                             errors="replace", replacement_char=0xFFFD)
        if self._special_ids is None:
            return self._pieces(texts)
        segments = tf_text.regex_split(_escape(texts), self._special_pattern, self._special_pattern)
        flat = _unescape(segments.flat_values)
        # -1: ordinary text (which never holds a whole special token, with its whitespace or not)
        special = self._special_ids.lookup(tf.strings.regex_replace(flat, f"^{WHITE_SPACE}+", "") if self._strips
                                           else flat)
        is_special = special >= 0
        pieces = self._pieces(tf.where(is_special, "", flat))  # no pieces for a special token
        ones = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(special, is_special), tf.cast(is_special, tf.int64))
        return segments.with_flat_values(tf.concat([ones, pieces], axis=1)).merge_dims(1, 2)

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """[CLS] + truncated word pieces + [SEP], each row at its own length."""
        return self._wrap(truncate(self.word_pieces(texts), self.max_length - 2, self.truncation))

    def chunks(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Every document cut into chunks of at most `max_length` tokens: [docs, (chunks), (tokens)].

        Consecutive chunks share `chunk_stride` tokens; a document longer than `max_chunks`
        chunks is first truncated (head, tail or head+tail) to what that many chunks hold.
        Each chunk is wrapped in [CLS] ... [SEP]; an empty document gives one empty chunk."""
        size = self.max_length - 2
        step = size - self.chunk_stride
        pieces = truncate(self.word_pieces(texts), size + (self.max_chunks - 1) * step, self.truncation)
        chunked = split_into_chunks(pieces, size, self.chunk_stride)
        return chunked.with_values(self._wrap(chunked.values))

    @property
    def token_types(self) -> bool:
        """Whether a pair's second text gets token type 1 (BERT's packing, where the checkpoint has
        token types), else one type for all (and none is given to the model)."""
        return self.spec.pairs == "bert" and self.spec.token_types

    def encode(self, texts: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor | None]:
        """(ids, token types or None), each row at its own length: a text, or with `pairs` a
        sentence pair (the two texts joined by PAIR_SEP), packed."""
        if not self.pairs:
            return self.tokenize(texts), None
        parts = tf.strings.split(tf.convert_to_tensor(texts, tf.string), PAIR_SEP, maxsplit=1).to_tensor(
            "", shape=[None, 2])  # a row without a second text (refused before it gets here) pairs with ""
        ids, types = self.tokenize_pairs(parts[:, 0], parts[:, 1])
        return ids, types if self.token_types else None

    def tokenize_pairs(self, texts: tf.Tensor, pairs: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """Two texts a row, packed as the checkpoint's Hugging Face tokenizer packs them, the pair
        truncated to `max_length` together (`pair_truncation`): (ids, token types), ragged."""
        separators = PAIRS[self.spec.pairs]
        first, second = truncate_pair(self.word_pieces(texts), self.word_pieces(pairs),
                                      self.max_length - 2 - separators, self.pair_truncation)
        rows = tf.shape(first.row_lengths())[0]
        cls, sep = tf.fill([rows, 1], self.cls_id), tf.fill([rows, 1], self.sep_id)
        ids = tf.concat([cls, first, *[sep] * separators, second, sep], axis=1)
        ones = tf.concat([tf.zeros_like(first), tf.zeros([rows, separators], tf.int32), tf.ones_like(second),
                          tf.ones([rows, 1], tf.int32)], axis=1)
        types = tf.concat([tf.zeros([rows, 1], tf.int32), ones], axis=1) if self.token_types else tf.zeros_like(ids)
        return ids, types

    def _wrap(self, pieces: tf.RaggedTensor) -> tf.RaggedTensor:
        rows = tf.shape(pieces.row_lengths())[0]
        cls = tf.fill([rows, 1], self.cls_id)
        sep = tf.fill([rows, 1], self.sep_id)
        return tf.concat([cls, pieces, sep], axis=1)

    def pad(self, ids: tf.RaggedTensor, types: tf.RaggedTensor | None = None) -> dict[str, tf.Tensor]:
        """Pad a ragged batch to its longest row: the model inputs (token types with a pair's)."""
        mask = tf.ones_like(ids).to_tensor(0)
        found = {"input_ids": ids.to_tensor(self.pad_id), "attention_mask": mask}
        if types is not None:
            found["token_type_ids"] = types.to_tensor(0)
        return found

    def __call__(self, texts: tf.Tensor, pairs: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        if pairs is None:
            return self.pad(*self.encode(texts))
        return self.pad(*self.tokenize_pairs(texts, pairs))
