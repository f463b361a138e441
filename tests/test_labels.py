"""Labels as users hold them, read as scikit-learn reads them; texts that TensorFlow could not take;
honest averages and thresholds. scikit-learn is the oracle throughout."""
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sklearn.preprocessing import LabelEncoder, MultiLabelBinarizer
from sklearn.utils.multiclass import type_of_target

from conftest import signal_texts
from tfclf import TextClassifier
from tfclf.config import RunConfig
from tfclf.data import inputs
from tfclf.data.examples import clean_text
from tfclf.data.predictions import PredictionWriter
from tfclf.data.tables import read_table
from tfclf.errors import TfclfError
from tfclf.evaluation import metrics


def read(y, task, classes=None, **config):
    """What fit makes of `y` beside as many texts: (label space, targets); nothing held out."""
    cfg = RunConfig(task=task, valid_fraction=0.0, **config)
    data = inputs.labelled([f"text {i}" for i in range(len(y))], y, None, None, cfg, classes=classes)
    return data.labels, data.y_train


# ------------------------------------------------------------------ the numbered cases
def test_multi_hot_rows_are_label_indicators_not_names():
    y = [[1, 0, 1], [0, 1, 0], [0, 0, 1], [1, 1, 0]]
    for container in (y, np.array(y)):
        space, targets = read(container, "multilabel")
        assert space.classes == ["0", "1", "2"] and list(space.classes_) == [0, 1, 2]
        np.testing.assert_array_equal(targets, y)
    space, _ = read(y, "multilabel", classes=["joy", "anger", "love"])
    assert space.classes == ["joy", "anger", "love"]
    with pytest.raises(TfclfError, match="3 indicator columns but 2 names"):
        read(y, "multilabel", classes=["joy", "anger"])


def test_integer_classes_sort_as_integers():
    y = list(range(11)) * 2
    space, targets = read(y, "multiclass")
    assert list(space.classes_) == list(range(11)) and space.classes_.dtype.kind == "i"
    np.testing.assert_array_equal(targets, y)  # the target of class k is k


def test_integer_labels_in_a_csv_sort_as_integers_too(tmp_path):
    (tmp_path / "t.csv").write_text("text,labels\n" + "".join(f"t{i},{i % 11}\n" for i in range(22)))
    config = RunConfig(task="multiclass", valid_fraction=0.0)
    assert inputs.labelled(str(tmp_path / "t.csv"), None, None, None, config).labels.classes == \
        [str(i) for i in range(11)]


def test_one_hot_rows_for_a_single_label_task():
    space, targets = read(np.eye(3, dtype=int)[[2, 0, 1, 2]], "multiclass")
    assert space.classes == ["0", "1", "2"] and list(targets) == [2, 0, 1, 2]
    with pytest.raises(TfclfError, match="labels row 1: 2 ones in an indicator row where a multiclass task needs "
                                         "exactly one"):
        read([[1, 0, 0], [1, 1, 0]], "multiclass")


@pytest.mark.parametrize("y,fragment", [
    ([[1, 0, 1], [0, 1]], "labels row 1: 2 0/1 values where row 0 has 3"),
    (["a", 1, "b"], "labels mix kinds"),
    ([0.5, 1.0, 0.0], "labels row 0: the label 0.5 is not a class"),
    (np.zeros((2, 2, 2)), "an array of 3 dimensions"),
])
def test_ambiguous_labels_are_refused_in_one_line(y, fragment):
    with pytest.raises(TfclfError, match=fragment):
        read(y, "multilabel" if isinstance(y[0], list) else "multiclass")


def test_valid_fraction_holds_out_a_tenth_by_default():
    assert RunConfig().valid_fraction == 0.1
    texts, labels = signal_texts(200, 0)
    data = inputs.labelled(texts, labels, None, None, RunConfig(task="binary"))
    assert len(data.valid) == 20 and len(data.train) == 180
    assert not set(data.valid.texts) - set(texts) and len(set(data.train.rows) & set(data.valid.rows)) == 0


def test_the_label_space_is_fitted_before_the_split():
    """A class the split puts in validation alone is still a class (it was an error)."""
    texts, labels = signal_texts(40, 0)
    labels[7] = "rare"
    data = inputs.labelled(texts, labels, None, None, RunConfig(task="multiclass", valid_fraction=0.5, seed=4))
    assert sum(data.valid.labels, []).count("rare") == 1  # this seed's split puts it there
    assert data.labels.classes == ["neg", "pos", "rare"]


def test_macro_averages_cover_the_labels_present():
    truth = np.array([0, 0, 1, 1, 1])  # class 2 has no example here
    probs = np.eye(3)[[0, 1, 1, 1, 1]]
    result = metrics.evaluate("multiclass", truth, probs, ["a", "b", "c"])
    from sklearn.metrics import f1_score

    assert result["macro_f1"] == pytest.approx(f1_score(truth, probs.argmax(1), average="macro", labels=[0, 1]))
    assert result["absent_labels"] == ["c"] and result["macro_over"] == 2
    multi = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    result = metrics.evaluate("multilabel", multi, multi * 0.9, ["a", "b", "c"], np.full(3, 0.5))
    assert result["macro_f1"] == 1.0 and result["absent_labels"] == ["c"]


def test_threshold_ties_go_to_the_candidate_nearest_a_half():
    rng = np.random.default_rng(0)
    truth = np.array([1] * 20 + [0] * 80)
    probs = np.where(truth == 1, rng.uniform(0.6, 0.9, 100), rng.uniform(0.0, 0.04, 100))[:, None]
    assert metrics.tune_thresholds(truth[:, None], probs)[0] == 0.5  # F1 is 1 anywhere in [0.05, 0.6]
    probs = np.where(truth == 1, rng.uniform(0.8, 0.9, 100), rng.uniform(0.0, 0.7, 100))[:, None]
    best = metrics.tune_thresholds(truth[:, None], probs)[0]  # F1 is 1 only above every negative
    assert probs[truth == 0].max() < best <= 0.8 and best == pytest.approx(np.ceil(probs[truth == 0].max() * 100) / 100)


def test_json_lines_are_cut_where_json_lines_end(tmp_path):
    """U+2028 inside a string is valid JSON, and what `tfclf predict --out x.jsonl` writes."""
    texts = ["one\u2028two", "three\u0085four\u2029", "five\rsix"]
    path = tmp_path / "p.jsonl"
    with open(path, "w", encoding="utf-8", newline="") as file:
        PredictionWriter(path, file, ["a"], "label", columns=["text"]).write(
            [{"text": t} for t in texts], range(3), ["a"] * 3, [[1.0]] * 3)
    table = read_table(path)
    assert list(table.frame["text"]) == texts and table.rows == ["line 1", "line 2", "line 3"]


def test_lone_surrogates_and_undecodable_bytes_become_the_replacement_character():
    assert clean_text("broken \ud83d tweet") == "broken \ufffd tweet"
    assert clean_text("pair \ud83d\ude00 joined") == "pair \U0001F600 joined"
    assert clean_text(b"caf\xe9") == "caf\ufffd" and clean_text("plain") == "plain"


# ------------------------------------------------------------------ generated containers against scikit-learn
NAMES = st.sampled_from(["cat", "dog", "ant", "B", "b", "10", "9", "ünï"])
ONE_PER_TEXT = st.one_of(
    st.lists(NAMES, min_size=2, max_size=30).map(lambda v: ("list of names", v)),
    st.lists(st.integers(-3, 12), min_size=2, max_size=30).map(lambda v: ("list of ints", v)),
    st.lists(st.booleans(), min_size=2, max_size=30).map(lambda v: ("list of bools", v)),
    st.lists(st.integers(0, 11), min_size=2, max_size=30).map(lambda v: ("numpy ints", np.array(v))),
    st.lists(NAMES, min_size=2, max_size=30).map(lambda v: ("numpy names", np.array(v))),
    st.lists(st.integers(0, 11), min_size=2, max_size=30).map(lambda v: ("pandas Series", pd.Series(v))),
    st.lists(NAMES, min_size=2, max_size=30).map(lambda v: ("pandas Categorical", pd.Categorical(v))),
    st.lists(st.integers(0, 11), min_size=2, max_size=30).map(lambda v: ("int Categorical", pd.Categorical(v))),
)
INDICATORS = st.integers(2, 6).flatmap(lambda k: st.lists(st.lists(st.integers(0, 1), min_size=k, max_size=k),
                                                            min_size=2, max_size=30)).map(
    lambda rows: ("multi-hot lists", rows))
INDICATOR_ARRAYS = INDICATORS.map(lambda c: ("2-D numpy", np.array(c[1])))
NAME_LISTS = st.lists(st.lists(NAMES, max_size=3), min_size=2, max_size=30).map(lambda v: ("lists of names", v))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(ONE_PER_TEXT, INDICATORS, INDICATOR_ARRAYS, NAME_LISTS))
def test_labels_read_as_scikit_learn_reads_them(case):
    kind, y = case
    if kind == "lists of names":
        task, oracle = "multilabel", MultiLabelBinarizer()
        expected = oracle.fit_transform(y)
        classes = oracle.classes_
    elif type_of_target(np.asarray(y)) == "multilabel-indicator":
        task, expected, classes = "multilabel", np.asarray(y), np.arange(np.asarray(y).shape[1])
    else:
        task, oracle = "multiclass", LabelEncoder()
        expected = oracle.fit_transform(np.asarray(y))
        classes = oracle.classes_
    if len(classes) < 2:
        with pytest.raises(TfclfError, match="fewer than two classes"):
            read(y, task)
        return
    space, targets = read(y, task)
    assert space.format.multi_hot == (kind != "lists of names" and type_of_target(np.asarray(y)) ==
                                      "multilabel-indicator")
    family = {"U": "text", "O": "text", "i": "integer", "u": "integer", "b": "boolean"}
    assert list(space.classes_) == list(classes)
    assert family[space.classes_.dtype.kind] == family[np.asarray(classes).dtype.kind]
    np.testing.assert_array_equal(targets, expected)
    # decisions come back as the user held the labels: the targets' own labels, decoded
    decided = targets.astype(int)
    back = space.values(decided)
    if space.format.multi_hot:
        np.testing.assert_array_equal(back, np.asarray(y))
    elif task == "multilabel":
        assert [sorted(map(str, row)) for row in back] == [sorted(set(map(str, row))) for row in y]
    else:
        assert list(back) == list(oracle.inverse_transform(expected))
    json.dumps(space.to_json())  # labels.json


# ------------------------------------------------------------------ trained: predict_proba's columns are classes_
def test_predict_proba_columns_follow_classes_on_a_trained_model(tiny_bert):
    """Integer labels 2 and 10 (as text, "10" sorts first): two columns, in classes_ order, and
    predict gives the integers back."""
    X, y = signal_texts(400, 0)
    ints = [10 if label == "pos" else 2 for label in y]
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", epochs=4, learning_rate=3e-3, batch_size=16,
                                         max_length=32).fit(X, ints, verbose=0)
    assert list(clf.classes_) == [2, 10]
    probs = clf.predict_proba(["good film", "awful film", "love it"])
    assert probs.shape == (3, 2) and np.allclose(probs.sum(axis=1), 1)
    assert list(clf.classes_[probs.argmax(axis=1)]) == clf.predict(["good film", "awful film", "love it"]) == [10, 2, 10]
    assert clf.decide(probs) == ["10", "2", "10"]  # names, as the CLI and the SavedModel show them
