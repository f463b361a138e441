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
from pathlib import Path

import tensorflow as tf
import tensorflow_text as tf_text

from tfclf.errors import TfclfError
from tfclf.storage.atomic import atomic_write_text, read_json_object
from tfclf.text.packing import WHITE_SPACE, InGraphTokenizer, in_id_order, read_settings, special_tokens_of

# Hugging Face drops NUL, U+FFFD and every "other" character except tab, newline
# and carriage return (tokenizers' BertNormalizer, clean_text).
_CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\x{FFFD}]"
# Unicode's White_Space (packing.WHITE_SPACE), which Hugging Face maps to " ".
_WHITESPACE = WHITE_SPACE + "+"
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
    pairs: str = "bert"  # how a pair of texts is packed (packing.PAIRS); the encoder family's
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
        settings = read_settings(path)
        if (path / "vocab.txt").is_file():
            vocab = read_vocab(path / "vocab.txt")
        elif (path / "tokenizer.json").is_file():  # a folder saved by tokenizers alone
            vocab, normalizer = _from_tokenizer_json(path / "tokenizer.json")
            settings = {**normalizer, **settings}
        else:
            raise TfclfError(f"{path}: no vocab.txt (nor tokenizer.json); a WordPiece checkpoint is needed")
        spec = cls(
            vocab=vocab,
            lowercase=bool(settings.get("do_lower_case", True)),
            strip_accents=settings.get("strip_accents"),
            tokenize_chinese_chars=bool(settings.get("tokenize_chinese_chars", True)),
            pairs=pairs, tokenizer_class=tokenizer_class, token_types=token_types,
            **special_tokens_of(settings),
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


def _from_tokenizer_json(file: Path) -> tuple[tuple[str, ...], dict]:
    """A tokenizer.json's WordPiece vocabulary (in id order) and its BertNormalizer's casing, under
    tokenizer_config.json's names."""
    found = read_json_object(file, "tokenizer.json")
    model = found.get("model") or {}
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise TfclfError(f"{file}: a WordPiece model expected, found {model.get('type')!r}")
    norm = found.get("normalizer") or {}
    casing = {"do_lower_case": norm.get("lowercase", True), "strip_accents": norm.get("strip_accents"),
              "tokenize_chinese_chars": norm.get("handle_chinese_chars", True)} if norm.get("type") == "BertNormalizer" \
        else {}
    return in_id_order(model["vocab"]), casing


class WordPieceTokenizer(InGraphTokenizer):
    """WordPiece with Hugging Face's BertNormalizer and BertPreTokenizer (packing.py does the
    special tokens, truncation, pairs, chunks and padding)."""

    def __init__(self, spec: TokenizerSpec, max_length: int = 128, truncation: str = "head",
                 chunk_stride: int = 0, max_chunks: int = 16, pair_truncation: str = "longest_first",
                 pairs: bool = False):
        super().__init__(spec, max_length, truncation, chunk_stride, max_chunks, pair_truncation, pairs,
                         name="wordpiece_tokenizer")
        self._keep_delim = f"{_PUNCT}|{_CJK}" if spec.tokenize_chinese_chars else _PUNCT
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

    def _pieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
        words = tf_text.regex_split(self.normalize(texts), f" +|{self._keep_delim}", self._keep_delim)
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > _MAX_CHARS_PER_WORD
        words = words.with_flat_values(tf.where(too_long, self.spec.unk_token, words.flat_values))
        return self._wordpiece.tokenize(words).merge_dims(1, 2)

