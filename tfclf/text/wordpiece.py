"""WordPiece tokenization inside the TensorFlow graph.

The same ids as the checkpoint's Hugging Face (fast) tokenizer, computed with
tensorflow-text ops, so a Keras model and an exported SavedModel take raw strings
and need no Python tokenizer. FastBertTokenizer alone is not enough: its
normalizer folds compatibility characters ("™" -> "tm", "´" -> " ") and counts
the 100-character word limit in bytes, where Hugging Face counts characters. So the
steps of Hugging Face's BertNormalizer and BertPreTokenizer are spelled out here
and only the WordPiece lookup is left to FastWordpieceTokenizer.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import tensorflow as tf
import tensorflow_text as tf_text

from tfclf.config import PAIR_TRUNCATIONS, TRUNCATIONS
from tfclf.data.examples import PAIR_SEP
from tfclf.errors import TfclfError, option
from tfclf.storage.atomic import atomic_write_text, read_json_object
from tfclf.text.sequences import split_into_chunks, truncate, truncate_pair

# Hugging Face drops NUL, U+FFFD and every "other" character except tab, newline
# and carriage return (tokenizers' BertNormalizer, clean_text).
_CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\x{FFFD}]"
# Rust's char::is_whitespace (Unicode White_Space), which Hugging Face maps to " ".
_WHITESPACE = r"[\t\n\x0B\x0C\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]+"
# BERT pre-tokenization: split on whitespace; keep ASCII and Unicode punctuation and
# CJK ideographs as words of their own (from tensorflow_text's BasicTokenizer).
_PUNCT = r"[!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]"
_CJK = (r"[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]|[\x{20000}-\x{2A6DF}]|[\x{2A700}-\x{2B73F}]"
        r"|[\x{2B740}-\x{2B81F}]|[\x{2B820}-\x{2CEAF}]|[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}]")
# Hugging Face's WordPiece turns a word of more than 100 characters into [UNK].
_MAX_CHARS_PER_WORD = 100


@dataclasses.dataclass(frozen=True)
class TokenizerSpec:
    """What the in-graph tokenizer needs from a checkpoint: its vocabulary and casing."""

    vocab: tuple[str, ...]
    lowercase: bool = True
    strip_accents: bool | None = None  # None: follow lowercase, as Hugging Face does
    cls_token: str = "[CLS]"
    sep_token: str = "[SEP]"
    pad_token: str = "[PAD]"
    unk_token: str = "[UNK]"
    mask_token: str = "[MASK]"
    tokenize_chinese_chars: bool = True  # CJK ideographs are words of their own
    pairs: str = "bert"  # how a pair of texts is packed (PAIRS); the encoder family's
    token_types: bool = True  # whether the encoder reads token types (DistilBERT and MPNet do not)
    tokenizer_class: str = "BertTokenizer"  # what tokenizer_config.json names for Hugging Face

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """The special tokens of the vocabulary: written in a text, each is that one token."""
        named = (self.cls_token, self.sep_token, self.pad_token, self.unk_token, self.mask_token)
        return tuple(dict.fromkeys(t for t in named if t in self.vocab))

    @classmethod
    def from_directory(cls, path: str | Path, pairs: str = "bert", tokenizer_class: str = "BertTokenizer",
                       token_types: bool = True) -> "TokenizerSpec":
        """Read `vocab.txt` and the casing from `tokenizer_config.json` in a Hugging Face folder;
        `pairs` and `tokenizer_class` are the encoder family's (models/backbones.py `tokenizer_spec`)."""
        path = Path(path)
        vocab_file = path / "vocab.txt"
        if not vocab_file.is_file():
            raise TfclfError(f"{path}: no vocab.txt; a BERT or DistilBERT WordPiece checkpoint is needed")
        settings = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the latter wins, as in Hugging Face
            if (path / name).is_file():
                settings.update(read_json_object(path / name, name))
        tokens = {k: _token_text(settings.get(k)) for k in ("cls_token", "sep_token", "pad_token", "unk_token",
                                                           "mask_token")}
        spec = cls(
            vocab=read_vocab(vocab_file),
            lowercase=bool(settings.get("do_lower_case", True)),
            strip_accents=settings.get("strip_accents"),
            tokenize_chinese_chars=bool(settings.get("tokenize_chinese_chars", True)),
            pairs=pairs, tokenizer_class=tokenizer_class, token_types=token_types,
            **{k: v for k, v in tokens.items() if v is not None},
        )
        spec.check()
        return spec

    def check(self) -> None:
        missing = [t for t in (self.cls_token, self.sep_token, self.pad_token, self.unk_token)
                   if t not in self.vocab]
        if missing:
            raise TfclfError(f"vocabulary lacks the special tokens {missing}")

    def save(self, path: str | Path) -> None:
        """Write `vocab.txt` and `tokenizer_config.json`, the Hugging Face layout."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path / "vocab.txt", "\n".join(self.vocab) + "\n")
        settings = {"do_lower_case": self.lowercase, "strip_accents": self.strip_accents,
                    "tokenize_chinese_chars": self.tokenize_chinese_chars,
                    "cls_token": self.cls_token, "sep_token": self.sep_token, "pad_token": self.pad_token,
                    "unk_token": self.unk_token, "mask_token": self.mask_token,
                    "tokenizer_class": self.tokenizer_class}
        atomic_write_text(path / "tokenizer_config.json", json.dumps(settings, indent=2))

    def token_id(self, token: str) -> int:
        return self.vocab.index(token)

    CONTINUATION = "##"  # WordPiece's mark of a piece that continues the word before it

    def continues_word(self, piece: str) -> bool:
        """Whether `piece` continues the word of the piece before it ("##ing" after "play")."""
        return piece.startswith(self.CONTINUATION)

    def word_of(self, piece: str) -> str:
        """What `piece` adds to its word's text."""
        return piece[len(self.CONTINUATION):] if self.continues_word(piece) else piece


def read_vocab(path: Path) -> tuple[str, ...]:
    """vocab.txt as Hugging Face's BertTokenizer reads it: a token a line, lines ending at \n, \r\n
    or \r only (not at U+0085, U+2028 or U+001C-U+001E, where str.splitlines also breaks)."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as err:
        raise TfclfError(f"{path}: not UTF-8 (byte {err.start}); a WordPiece vocab.txt is UTF-8 text") from None
    return tuple(lines[:-1] if lines and lines[-1] == "" else lines)


def _token_text(value) -> str | None:
    """A special token as tokenizer_config.json writes it: a string, or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


# How each family packs two texts (TokenizerSpec.pairs): BERT's [CLS] a [SEP] b [SEP] with token
# types 0 then 1 (Hugging Face's TemplateProcessing), or RoBERTa's <s> a </s></s> b </s> with one
# type (RobertaProcessing, which MPNet's tokenizer uses too): the separators between the texts.
PAIRS = {"bert": 1, "roberta": 2}


class WordPieceTokenizer(tf.Module):
    """Raw strings (or pairs of them) -> token ids with the checkpoint's special tokens, truncated,
    as a ragged tensor.

    `tokenize` keeps every row at its own length (the tf.data pipeline buckets on it);
    `__call__` pads to the longest row of the batch, never further.
    """

    def __init__(self, spec: TokenizerSpec, max_length: int = 128, truncation: str = "head",
                 chunk_stride: int = 0, max_chunks: int = 16, pair_truncation: str = "longest_first",
                 pairs: bool = False):
        super().__init__(name="wordpiece_tokenizer")
        if max_length < 3:
            raise TfclfError(f"{option('max_length')} must be at least 3, got {max_length}")
        if truncation not in TRUNCATIONS:
            raise TfclfError(f"{option('truncation')} must be one of {', '.join(TRUNCATIONS)}, got {truncation!r}")
        if not 0 <= chunk_stride < max_length - 2:
            raise TfclfError(f"{option('chunk_stride')} must be between 0 and {option('max_length')} - 3 "
                             f"({max_length - 3}), "
                             f"got {chunk_stride}")
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
        self._keep_delim = f"{_PUNCT}|{_CJK}" if spec.tokenize_chinese_chars else _PUNCT
        specials = spec.special_tokens
        self._special_pattern = "|".join(re.escape(t) for t in specials)
        self._special_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(list(specials), [spec.token_id(t) for t in specials],
                                                tf.string, tf.int32), default_value=-1) if specials else None
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=list(spec.vocab), token_out_type=tf.int32, unknown_token=spec.unk_token,
            no_pretokenization=True,
            # Words longer than 100 characters never get here, so 4 bytes a character is enough.
            max_bytes_per_word=4 * _MAX_CHARS_PER_WORD)

    def normalize(self, texts: tf.Tensor) -> tf.Tensor:
        """Hugging Face's BertNormalizer: clean, then strip accents and lowercase."""
        texts = tf.strings.regex_replace(texts, _CONTROL, "")
        texts = tf.strings.regex_replace(texts, _WHITESPACE, " ")
        strip = self.spec.lowercase if self.spec.strip_accents is None else self.spec.strip_accents
        if strip:
            texts = tf_text.normalize_utf8(texts, "NFD")
            texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
        if self.spec.lowercase:
            # letter by letter, as Hugging Face does: ICU would make a word-final capital sigma ς
            texts = tf.strings.lower(tf.strings.regex_replace(texts, "\u03a3", "\u03c3"), encoding="utf-8")
        return texts

    def word_pieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Token ids of each text, untruncated and without the [CLS] and [SEP] around it:
        [batch, (tokens)]. A special token written in the text ("a [MASK] b") is that token, as
        in Hugging Face; the text around it is tokenized as usual.

        Bytes that are not UTF-8 (and surrogates encoded as if they were) become U+FFFD first,
        as data/examples.clean_text does in Python, so a client that sends raw bytes to the
        SavedModel gets the ids `predict` gives; U+FFFD is then dropped as Hugging Face drops it."""
        texts = tf.strings.unicode_transcode(tf.convert_to_tensor(texts, tf.string), "UTF-8", "UTF-8",
                                             errors="replace", replacement_char=0xFFFD)
        if self._special_ids is None:
            return self._pieces(texts)
        # regex_split stops a string at a NUL byte; U+FFFD is dropped by normalize as NUL is
        texts = tf.strings.regex_replace(texts, "\x00", "\ufffd")
        segments = tf_text.regex_split(texts, self._special_pattern, self._special_pattern)
        special = self._special_ids.lookup(segments.flat_values)  # -1: ordinary text
        is_special = special >= 0
        pieces = self._pieces(tf.where(is_special, "", segments.flat_values))  # no pieces for a special token
        ones = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(special, is_special), tf.cast(is_special, tf.int64))
        return segments.with_flat_values(tf.concat([ones, pieces], axis=1)).merge_dims(1, 2)

    def _pieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
        words = tf_text.regex_split(self.normalize(texts), f" +|{self._keep_delim}", self._keep_delim)
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > _MAX_CHARS_PER_WORD
        words = words.with_flat_values(tf.where(too_long, self.spec.unk_token, words.flat_values))
        return self._wordpiece.tokenize(words).merge_dims(1, 2)

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
