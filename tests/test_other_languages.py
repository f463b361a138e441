"""A Russian example end to end, as the Russian-tweets recipe users come from: a tiny random cased
BERT with a Russian WordPiece vocabulary learns binary sentiment on generated Russian text, then
evaluates, predicts and exports from the CLI; the SavedModel answers as the Python model does."""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import reference_ids
import tensorflow as tf

from tfclf import TextClassifier
from tfclf.cli import main
from tfclf.serving.export import load_saved_model, predict_saved_model

POSITIVE = "хороший отличный прекрасный люблю восторг Замечательно".split()
NEGATIVE = "плохой ужасный скучный ненавижу провал Отвратительно".split()
FILLER = ("фильм сюжет актёр был очень этот день Москва вчера смотрел новый сериал погода "
          "Ёлка Съёмка объявление Пётр сегодня").split()


def russian_texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Tweets whose sentiment is one cue word among filler, with capitals, ё and punctuation."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = ("негатив", "позитив")[rng.integers(2)]
        words = list(rng.choice(FILLER, size=rng.integers(3, 12)))
        cue = rng.choice(POSITIVE if label == "позитив" else NEGATIVE)
        words.insert(rng.integers(0, len(words) + 1), cue.upper() if rng.random() < 0.2 else cue)
        text = " ".join(words)
        texts.append(text[0].upper() + text[1:] + rng.choice(["", "!", "...", " :)", "?!"]))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def russian_bert(tmp_path_factory):
    """A cased BERT folder: a WordPiece vocabulary trained on Russian text, random tiny weights."""
    import tf_keras as keras
    from tokenizers import BertWordPieceTokenizer

    from tfclf.models import backbones, weights
    from tfclf.models import families

    folder = tmp_path_factory.mktemp("rubert-tiny")
    trainer = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    trainer.train_from_iterator(russian_texts(2000, 10)[0], vocab_size=400, min_frequency=1,
                                special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    vocab = [token for token, _ in sorted(trainer.get_vocab().items(), key=lambda item: item[1])]
    (folder / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "strip_accents": False,
                                                              "tokenizer_class": "BertTokenizer"}))
    keras.utils.set_random_seed(0)
    config = families.read_config({"model_type": "bert", "vocab_size": len(vocab), "hidden_size": 32,
                                   "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
                                   "max_position_embeddings": 128})
    config.save_pretrained(folder)
    weights.write_safetensors(folder / "model.safetensors", weights.to_hugging_face(backbones.build_backbone(config)))
    return folder


def test_cased_russian_ids_are_hugging_faces(russian_bert):
    texts = russian_texts(300, 11)[0] + ["ХОРОШИЙ хороший Хороший", "Ёлка ёлка Елка", "[MASK] фильм[SEP]"]
    clf = TextClassifier.from_pretrained(str(russian_bert), task="binary", max_length=128)
    ours = [row.tolist() for row in clf.tokenizer.tokenize(tf.constant(texts)).numpy()]
    assert ours == reference_ids(russian_bert, texts)
    words = [row.tolist() for row in clf.tokenizer.tokenize(tf.constant(["ХОРОШИЙ", "хороший", "Хороший",
                                                                          "ёлка", "елка"])).numpy()]
    assert len({tuple(w) for w in words[:3]}) == 3  # cased: the capitals are other tokens
    assert words[3] != words[4]  # and ё is not е: no accents stripped


@pytest.mark.precision
def test_russian_binary_sentiment_end_to_end(russian_bert, tmp_path, capsys):
    for name, n, seed in (("train", 400, 0), ("valid", 100, 1), ("test", 200, 2)):
        texts, labels = russian_texts(n, seed)
        pd.DataFrame({"text": texts, "labels": labels}).to_csv(tmp_path / f"{name}.csv", index=False)
    run = tmp_path / "run"
    assert main(["train", "--train", str(tmp_path / "train.csv"), "--valid", str(tmp_path / "valid.csv"),
                 "--task", "binary", "--model", str(russian_bert), "--epochs", "4", "--lr", "3e-3",
                 "--max-length", "32", "--batch-size", "16", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--data", str(tmp_path / "test.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.9
    assert main(["predict", "--run", str(run), "--text", "Отличный фильм!", "--text", "Ужасный сюжет"]) == 0
    answers = [json.loads(line)["label"] for line in capsys.readouterr().out.splitlines()]
    assert answers == ["позитив", "негатив"]
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "served")]) == 0
    clf = TextClassifier.load(run, precision="float32")  # like with like: the SavedModel is float32
    texts = russian_texts(60, 3)[0] + ["", "ПЛОХОЙ", "Ёлка… «кавычки» — тире"]
    served = predict_saved_model(load_saved_model(tmp_path / "served" / "1"), texts)
    np.testing.assert_allclose(served["probabilities"], clf.predict_proba(texts), atol=1e-5)  # both columns
    assert [label.decode() for label in served["label"]] == clf.predict(texts)
