"""The family contract, tokenizer side: for one text and for a pair, tfclf's in-graph tokenizer
gives the ids (and token types) Hugging Face's tokenizer gives (the `tokenizers` library behind
AutoTokenizer), with each family's special tokens and pair packing, truncated alike (longest_first,
only_first, only_second) at several lengths: 0 mismatches, on GoEmotions dev where ../shared is
present and always on generated hard texts (scripts, accents, emoji, control characters, literal
special tokens, a 100,000-character text). The vocabularies are trained here on that text."""
from __future__ import annotations

import json

import pytest
import tensorflow as tf

from conftest import SHARED
from test_tokenizer_parity import generated_texts
from tfclf.text.wordpiece import TokenizerSpec, WordPieceTokenizer

STYLES = {  # family -> (its pair packing, its special tokens: pad, unk, cls, sep, mask)
    "bert": ("bert", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]),
    "distilbert": ("bert", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]),
    "mpnet": ("roberta", ["<pad>", "[UNK]", "<s>", "</s>", "<mask>"]),
}
HARD = ["naïve café, déjà vu!", "emoji 😀🎉 and ZWJ 👩‍💻", "ctrl\x00\x07 tab\tnl\n", "ΟΔΟΣ ΣΟΦΟΣ", "北京我们喜欢",
        "a [SEP] b", "<s> x </s>", "x" * 100_000, "word " * 20_000, "", "   "]


def texts() -> list[str]:
    found = generated_texts(600, 7) + HARD
    dev = SHARED / "goemotions" / "dev.tsv"
    if dev.is_file():
        found += [line.split("\t")[0] for line in dev.read_text("utf-8").splitlines()]
    return found


@pytest.fixture(scope="module", params=list(STYLES))
def family(request, tmp_path_factory):
    """(family, checkpoint folder, Hugging Face's tokenizer) with a vocabulary trained here."""
    from tokenizers import BertWordPieceTokenizer, processors

    name = request.param
    pairs, (pad, unk, cls, sep, mask) = STYLES[name]
    trainer = BertWordPieceTokenizer(lowercase=True, strip_accents=None, unk_token=unk, sep_token=sep,
                                     cls_token=cls, pad_token=pad, mask_token=mask)
    corpus = generated_texts(2000, 1) + [t for t in texts()[:4000] if t not in HARD]  # pieces of real words
    trainer.train_from_iterator(corpus, vocab_size=1500, min_frequency=1,
                                special_tokens=[cls, pad, sep, unk, mask] if pairs == "roberta" else
                                [pad, unk, cls, sep, mask])
    vocab = [t for t, _ in sorted(trainer.get_vocab().items(), key=lambda item: item[1])]
    folder = tmp_path_factory.mktemp(name)
    (folder / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "cls_token": cls, "sep_token": sep,
                                                              "pad_token": pad, "unk_token": unk, "mask_token": mask}))
    # what the families' tokenizer.json files say: BERT's [CLS] a [SEP] b [SEP], MPNet's <s> a </s></s> b </s>
    processor = processors.RobertaProcessing if pairs == "roberta" else processors.BertProcessing
    trainer.post_processor = processor((sep, vocab.index(sep)), (cls, vocab.index(cls)))
    return name, TokenizerSpec.from_directory(folder, pairs=pairs), trainer


def reference(tokenizer, first: list[str], second: list[str] | None, max_length: int, strategy: str):
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length, strategy=strategy)
    encoded = tokenizer.encode_batch(first if second is None else list(zip(first, second)))
    return [e.ids for e in encoded], [e.type_ids for e in encoded]


def ours(spec, first, second, max_length: int, strategy: str):
    tok = WordPieceTokenizer(spec, max_length=max_length, pair_truncation=strategy)
    if second is None:
        return [r.tolist() for r in tok.tokenize(tf.constant(first)).numpy()], None
    ids, types = tok.tokenize_pairs(tf.constant(first), tf.constant(second))
    return [r.tolist() for r in ids.numpy()], [r.tolist() for r in types.numpy()]


@pytest.mark.parametrize("max_length", [16, 128])
def test_single_texts_and_pairs_get_hugging_faces_ids(family, max_length):
    name, spec, tokenizer = family
    first = texts()
    second = first[1:] + first[:1]  # every text also in a pair, long with short and short with long
    want, _ = reference(tokenizer, first, None, max_length, "longest_first")
    got, _ = ours(spec, first, None, max_length, "longest_first")
    differ = [i for i, (w, g) in enumerate(zip(want, got)) if w != g]
    assert not differ, f"{name}: {len(differ)} of {len(first)} single texts differ, e.g. {first[differ[0]][:80]!r}"
    for strategy in ("longest_first", "only_first", "only_second"):
        # Hugging Face refuses a pair that one text cannot absorb: compare the pairs it takes
        keep = [i for i, (a, b) in enumerate(zip(first, second)) if strategy == "longest_first" or
                _fits(tokenizer, a if strategy == "only_second" else b, max_length)]
        a, b = [first[i] for i in keep], [second[i] for i in keep]
        want_ids, want_types = reference(tokenizer, a, b, max_length, strategy)
        got_ids, got_types = ours(spec, a, b, max_length, strategy)
        differ = [i for i, (w, g) in enumerate(zip(want_ids, got_ids)) if w != g]
        assert not differ, f"{name} {strategy}: {len(differ)} of {len(a)} pairs differ, e.g. {a[differ[0]][:60]!r}"
        if STYLES[name][0] == "bert":
            assert got_types == want_types, f"{name} {strategy}: token types differ"
        else:
            assert all(not any(t) for t in got_types)
        assert len(keep) >= 200, (strategy, len(keep))  # enough pairs to mean something


def _fits(tokenizer, kept: str, max_length: int) -> bool:
    """Whether the text not truncated leaves room for the other and the special tokens."""
    tokenizer.no_truncation()
    return len(tokenizer.encode(kept, add_special_tokens=False).ids) + 4 < max_length


def test_a_pair_tokenizer_in_a_saved_model_gives_the_same_ids(family, tmp_path):
    import tensorflow_text  # noqa: F401  (registers the ops a loaded SavedModel needs)

    name, spec, tokenizer = family
    module = tf.Module()
    module.tokenizer = WordPieceTokenizer(spec, max_length=32)
    module.ids = tf.function(lambda a, b: module.tokenizer(a, b)["input_ids"],
                             input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    tf.saved_model.save(module, str(tmp_path / "saved"))
    first = generated_texts(200, 9)
    second = first[::-1]
    padded = tf.saved_model.load(str(tmp_path / "saved")).ids(tf.constant(first), tf.constant(second)).numpy()
    want, _ = reference(tokenizer, first, second, 32, "longest_first")
    pad = spec.token_id(spec.pad_token)
    assert [row[:len(w)].tolist() for row, w in zip(padded, want)] == want
    assert all((row[len(w):] == pad).all() for row, w in zip(padded, want))


CLASSES = {"bert": "BertTokenizer", "distilbert": "DistilBertTokenizer", "mpnet": "MPNetTokenizer"}


@pytest.mark.parametrize("max_length", [16, 128])
def test_the_openvino_tokenizer_gives_hugging_faces_ids(family, max_length):
    """`export --format openvino` tokenizes in OpenVINO ops (openvino-tokenizers, converted from
    transformers' tokenizer of the run's vocabulary): the same ids, token types and truncation
    (a pair: longest first) as Hugging Face's, on the same texts as tfclf's own tokenizer."""
    import dataclasses

    import numpy as np
    import openvino as ov

    from tfclf.serving.openvino_export import tokenizer_model

    name, spec, tokenizer = family
    spec = dataclasses.replace(spec, tokenizer_class=CLASSES[name])  # as the family's runs record it
    first = texts()
    # Pairs: openvino-tokenizers' Truncate op splits an over-long pair's budget otherwise than
    # Hugging Face's longest_first (bert at 16 tokens: 142 of 6,037 pairs), so export refuses pair
    # runs (tests/test_openvino_export.py); the pairs that fit are compared, as a later fix needs.
    fit = [(a, b) for a, b in zip(first, first[1:] + first[:1]) if _fits_whole(tokenizer, a, b, max_length)]
    assert len(fit) >= 100, len(fit)
    for pair in (False, True):
        a, b = ([t for t, _ in fit], [t for _, t in fit]) if pair else (first, None)
        compiled = ov.compile_model(tokenizer_model(spec, max_length, pair), "CPU")
        found = compiled([np.array(a)] if b is None else [np.array(a), np.array(b)])
        mask = found["attention_mask"].astype(bool)
        got = [row[m].tolist() for row, m in zip(found["input_ids"], mask)]
        want_ids, want_types = reference(tokenizer, a, b, max_length, "longest_first")
        differ = [i for i, (w, g) in enumerate(zip(want_ids, got)) if w != g]
        assert not differ, f"{name}: {len(differ)} of {len(a)} differ, e.g. {a[differ[0]][:60]!r} -> " \
            f"{got[differ[0]][:12]} where Hugging Face gives {want_ids[differ[0]][:12]}"
        if name == "bert":  # the one of the three that reads token types
            assert [row[m].tolist() for row, m in zip(found["token_type_ids"], mask)] == want_types


def _fits_whole(tokenizer, a: str, b: str, max_length: int) -> bool:
    tokenizer.no_truncation()
    return len(tokenizer.encode(a, b).ids) <= max_length
