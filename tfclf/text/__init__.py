"""Text to token ids in the TensorFlow graph (the same ids as Hugging Face): WordPiece
(wordpiece.py) or byte-level BPE (bpe.py), each a tokenizer of packing.py's kind, then
truncation, chunks and padded batches (sequences.py)."""
from __future__ import annotations

from pathlib import Path

KINDS = ("wordpiece", "bpe")  # an encoder family's `tokenizer`


def read_spec(kind: str, path: str | Path, **family):
    """The spec of the `kind` of tokenizer in a Hugging Face folder (`family`: pairs, tokenizer_class, token_types)."""
    if kind == "bpe":
        from tfclf.text.bpe import BytePairSpec

        return BytePairSpec.from_directory(path, **family)
    from tfclf.text.wordpiece import TokenizerSpec

    return TokenizerSpec.from_directory(path, **family)


def make_tokenizer(spec, *args, **kwargs):
    """The in-graph tokenizer of a spec (packing.InGraphTokenizer's arguments after it)."""
    from tfclf.text.bpe import BytePairSpec, BytePairTokenizer
    from tfclf.text.wordpiece import WordPieceTokenizer

    return (BytePairTokenizer if isinstance(spec, BytePairSpec) else WordPieceTokenizer)(spec, *args, **kwargs)
