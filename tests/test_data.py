"""Reading the three label layouts from CSV, TSV, JSON Lines and DataFrames, and the label space."""
import json

import numpy as np
import pandas as pd
import pytest

from tfclf.data.examples import Columns, load_examples

from tfclf.data.inputs import train_valid_split

from tfclf.data.labels import LabelSpace
from tfclf.errors import TfclfError


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_one_label_per_row_keeps_quoted_newlines_and_line_numbers(tmp_path):
    f = write(tmp_path / "t.csv", 'text,labels\n"first\nline",a\nsecond,b\n\nthird,a\n')
    ex = load_examples(f, task="multiclass")
    assert ex.texts == ["first\nline", "second", "third"]
    assert ex.labels == [["a"], ["b"], ["a"]]
    assert ex.rows == ["line 2", "line 4", "line 6"]


def test_tsv_and_custom_columns(tmp_path):
    f = write(tmp_path / "t.tsv", "body\ttopic\nhello there\tx\nbye\ty\n")
    ex = load_examples(f, Columns(text="body", label="topic"), task="binary")
    assert ex.texts == ["hello there", "bye"] and ex.labels == [["x"], ["y"]]


def test_multilabel_separator_in_one_cell(tmp_path):
    f = write(tmp_path / "t.csv", 'text,labels\none,"joy, love"\ntwo,anger\nthree,\n')
    ex = load_examples(f, task="multilabel")
    assert ex.labels == [["joy", "love"], ["anger"], []]
    ex = load_examples(write(tmp_path / "p.csv", "text,labels\none,joy|love\n"), Columns(label_sep="|"),
                       task="multilabel")
    assert ex.labels == [["joy", "love"]]


def test_one_hot_columns_layout(tmp_path):
    f = write(tmp_path / "t.csv", "text,toxic,insult,threat\na,1,0,0\nb,1,1,0\nc,0,0,0\n")
    ex = load_examples(f, Columns(label_columns=("toxic", "insult", "threat")), task="multilabel")
    assert ex.labels == [["toxic"], ["toxic", "insult"], []]
    space = LabelSpace.fit(ex, "multilabel")
    assert space.classes == ["toxic", "insult", "threat"]  # the columns, "threat" never positive
    assert space.encode(ex).tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]


def test_one_hot_column_with_other_value_names_the_row(tmp_path):
    f = write(tmp_path / "t.csv", "text,a,b\nx,1,0\ny,2,0\n")
    with pytest.raises(TfclfError, match=r"t.csv line 3: column 'a' holds '2', where 0 or 1"):
        load_examples(f, Columns(label_columns=("a", "b")), task="multilabel")


def test_jsonl_with_label_lists_and_numbers(tmp_path):
    rows = [{"text": "a", "labels": ["x", "y"]}, {"text": "b", "labels": ["y"]}, {"text": "c", "labels": []}]
    f = write(tmp_path / "t.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    assert load_examples(f, task="multilabel").labels == [["x", "y"], ["y"], []]
    f = write(tmp_path / "n.jsonl", '{"text": "a", "labels": 1}\n{"text": "b", "labels": 0.0}\n')
    assert load_examples(f, task="binary").labels == [["1"], ["0"]]


def test_dataframe_rows_are_named_by_index():
    frame = pd.DataFrame({"text": ["a", ""], "labels": ["x", "y"]}, index=["r1", "r2"])
    with pytest.raises(TfclfError, match=r"DataFrame row 1 \(index 'r2'\): the text is empty"):
        load_examples(frame)


def test_drop_empty_drops_and_warns(tmp_path, capsys):
    f = write(tmp_path / "t.csv", 'text,labels\nkeep,a\n"  ",b\nalso,b\n,a\n')
    ex = load_examples(f, task="multiclass", drop_empty=True)
    assert ex.texts == ["keep", "also"] and ex.rows == ["line 2", "line 4"]
    assert "dropped 2 rows with empty text (line 3, line 5)" in capsys.readouterr().err


def test_label_space_binary_positive_class_and_unseen_label(tmp_path):
    ex = load_examples(write(tmp_path / "t.csv", "text,labels\na,pos\nb,neg\n"), task="binary")
    space = LabelSpace.fit(ex, "binary")
    assert space.classes == ["neg", "pos"] and space.num_outputs == 1
    assert space.encode(ex).ravel().tolist() == [1.0, 0.0]
    unseen = load_examples(write(tmp_path / "e.csv", "text,labels\na,pos\nb,meh\n"), task="binary")
    with pytest.raises(TfclfError, match=r"e.csv line 3: label 'meh' was never seen in training"):
        space.encode(unseen)


def test_binary_with_three_classes_points_to_multiclass(tmp_path):
    ex = load_examples(write(tmp_path / "t.csv", "text,labels\na,x\nb,y\nc,z\n"), task="binary")
    with pytest.raises(TfclfError, match="exactly two classes, found 3.*task='multiclass'"):
        LabelSpace.fit(ex, "binary")


def test_label_space_round_trips_through_json():
    """A saved order is the head's: it is never re-sorted (fit chooses it once)."""
    space = LabelSpace("multiclass", ["b", "a", "c"])
    again = LabelSpace.from_json(json.loads(json.dumps(space.to_json())))
    assert again.classes == space.classes == ["b", "a", "c"]


def test_valid_split_is_seeded_stratified_and_disjoint(tmp_path):
    lines = "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(100))
    ex = load_examples(write(tmp_path / "t.csv", "text,labels\n" + lines))
    a1, b1 = train_valid_split(ex, 0.2, seed=1)
    a2, b2 = train_valid_split(ex, 0.2, seed=1)
    assert b1.texts == b2.texts and len(b1) == 20
    assert not set(a1.texts) & set(b1.texts)
    assert sorted(sum(b1.labels, [])).count("a") == 10


def test_one_label_per_row_rejects_two(tmp_path):
    f = write(tmp_path / "t.csv", 'text,labels\na,x\nb,\n')
    with pytest.raises(TfclfError, match=r"line 3: no label where a multiclass task needs exactly one"):
        load_examples(f, task="multiclass")
    assert np.array_equal(LabelSpace("multiclass", ["x", "y"]).encode(load_examples(
        write(tmp_path / "u.csv", "text,labels\na,y\n"))), [1])


def test_label_of_the_wrong_type_names_the_line(tmp_path):
    f = write(tmp_path / "t.jsonl", '{"text": "a", "labels": "x"}\n{"text": "b", "labels": {"y": 1}}\n')
    with pytest.raises(TfclfError, match=r"t.jsonl line 2: a label is a dict \(\{'y': 1\}\), where a name"):
        load_examples(f, task="multiclass")
