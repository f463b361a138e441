"""The in-graph tokenizer gives the ids `AutoTokenizer.from_pretrained(folder)` gives, on cased and
uncased WordPiece vocabularies of many scripts: no download, the vocabularies are trained here
with the `tokenizers` WordPiece trainer on generated multilingual text."""
import json
import unicodedata

import numpy as np
import pytest

from conftest import reference_ids
import tensorflow as tf

from tfclf.text.wordpiece import TokenizerSpec, WordPieceTokenizer

WORDS = {
    "ru": "Привет мир Москва погода хороший фильм ужасный сюжет Съёмка ёлка Ещё объявление".split(),
    "el": "Καλημέρα ΟΔΟΣ οδός ΣΟΦΟΣ σοφός Ελλάδα ΆΝΘΡΩΠΟΣ άνθρωπος ΥΠΌΘΕΣΗ".split(),
    "de": "Straße Grüße GROSS Fußball Mädchen ÄRGER Übung Öl".split(),
    "fr": "élève Noël ÇA garçon être où déjà ŒUVRE cœur".split(),
    "tr": "İstanbul ılık IŞIK şeker Ağaç ÇİÇEK güzel Iğdır".split(),
    "zh": "我们 喜欢 电影 天气 很好 中文 北京".split(),
    "ja": "東京 ありがとう カタカナ ひらがな 日本語 テスト".split(),
    "en": "The movie WAS great I'm not SURE don't stop U.S.A. e-mail".split(),
}
SPECIALS = ["[MASK]", "[CLS]", "[SEP]", "[UNK]", "[PAD]"]
ODD_SPACES = [" ", "  ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "\u202f", " \r\n ", "\x00", "\u200b", " \ufffd"]
PUNCT = list(".,!?;:()«»—–…\"'")


def generated_texts(n: int, seed: int) -> list[str]:
    """Texts mixing scripts, casing, decomposed (NFD) letters, literal special tokens (alone and
    glued to words), odd whitespace and punctuation."""
    rng = np.random.default_rng(seed)
    pool = [w for words in WORDS.values() for w in words]
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(rng.integers(1, 12)):
            word = pool[rng.integers(len(pool))]
            roll = rng.random()
            if roll < 0.15:
                word = word.upper()
            elif roll < 0.25:
                word = word.title()
            elif roll < 0.35:
                word = unicodedata.normalize("NFD", word)
            if rng.random() < 0.12:
                special = SPECIALS[rng.integers(len(SPECIALS))]
                word = word + special if rng.random() < 0.5 else special
            if rng.random() < 0.15:
                word += PUNCT[rng.integers(len(PUNCT))]
            parts.append(word)
            parts.append(ODD_SPACES[rng.integers(len(ODD_SPACES))] if rng.random() < 0.3 else " ")
        texts.append("".join(parts))
    return texts


def write_checkpoint_folder(folder, lowercase: bool):
    from tokenizers import BertWordPieceTokenizer

    corpus = generated_texts(3000, 1)
    trainer = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=None)
    trainer.train_from_iterator(corpus, vocab_size=600, min_frequency=1, special_tokens=["[PAD]", "[UNK]", "[CLS]",
                                                                                          "[SEP]", "[MASK]"])
    folder.mkdir(parents=True, exist_ok=True)
    vocab = sorted(trainer.get_vocab().items(), key=lambda item: item[1])
    (folder / "vocab.txt").write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lowercase,
                                                              "tokenizer_class": "BertTokenizer"}))
    return folder


def hugging_face_ids(folder, texts: list[str]) -> list[list[int]]:
    return reference_ids(folder, texts)


def tfclf_ids(folder, texts: list[str]) -> list[list[int]]:
    tokenizer = WordPieceTokenizer(TokenizerSpec.from_directory(folder), max_length=4096)
    return [row.tolist() for row in tokenizer.tokenize(tf.constant(texts)).numpy()]


@pytest.mark.parametrize("lowercase", [False, True], ids=["cased", "uncased"])
def test_same_ids_as_hugging_face_on_multilingual_text(tmp_path, lowercase):
    folder = write_checkpoint_folder(tmp_path / "checkpoint", lowercase)
    texts = generated_texts(1200, 2)
    want, got = hugging_face_ids(folder, texts), tfclf_ids(folder, texts)
    differ = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    assert not differ, f"{len(differ)} of {len(texts)} texts differ, e.g. {differ[:3]}"


def test_literal_special_tokens_and_final_sigma(tmp_path):
    """The cases that differed: a special token written in the text is that token, and a capital
    sigma lowercases to σ wherever it stands (Hugging Face lowercases letter by letter)."""
    folder = write_checkpoint_folder(tmp_path / "checkpoint", lowercase=True)
    texts = ["ΟΔΟΣ ΣΟΦΟΣ", "a [MASK] b", "x[SEP]y", "[CLS]", "[mask] stays text", "mo\x00vie [MASK]\x00x"]
    assert tfclf_ids(folder, texts) == hugging_face_ids(folder, texts)


def test_tokenize_chinese_chars_false_and_vocab_lines_as_hugging_face_reads_them(tmp_path):
    """tokenize_chinese_chars=false keeps CJK runs whole; vocab.txt breaks lines at \\n only, so a
    token holding U+2028 or U+0085 does not shift every later id."""
    folder = write_checkpoint_folder(tmp_path / "checkpoint", lowercase=False)
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
    vocab[10:10] = ["odd\u2028token", "odd\u0085token", "北京", "我们"]
    (folder / "vocab.txt").write_text("\n".join(vocab), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer",
                                                              "tokenize_chinese_chars": False}))
    spec = TokenizerSpec.from_directory(folder)
    assert len(spec.vocab) == len([v for v in vocab if v]) and not spec.tokenize_chinese_chars
    texts = ["北京 我们 喜欢 电影", "我们喜欢北京", "The movie 東京"] + generated_texts(200, 3)
    assert tfclf_ids(folder, texts) == hugging_face_ids(folder, texts)


def test_a_saved_model_tokenizes_as_hugging_face_does(tmp_path):
    """What `serve_text` runs: the tokenizer saved in a SavedModel and loaded back (with
    tensorflow-text's ops only) gives the same ids."""
    import tensorflow_text  # noqa: F401  (registers the ops a loaded SavedModel needs)

    folder = write_checkpoint_folder(tmp_path / "checkpoint", lowercase=False)
    module = tf.Module()
    module.tokenizer = WordPieceTokenizer(TokenizerSpec.from_directory(folder), max_length=4096)
    module.ids = tf.function(lambda text: module.tokenizer.tokenize(text).to_tensor(-1),
                             input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    texts = generated_texts(300, 4)
    padded = tf.saved_model.load(str(tmp_path / "saved")).ids(tf.constant(texts)).numpy()
    assert [[i for i in row if i >= 0] for row in padded.tolist()] == hugging_face_ids(folder, texts)
