"""Hostile input to the data reader: every case ends in a result or a TfclfError, nothing else.

Property-based (hypothesis): random bytes, random unicode, broken quoting, duplicate columns,
mixed label types; plus a 10 MB line. Each example runs under a deadline, so a hang fails.
"""
import json
import resource

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfclf.data.examples import Columns, load_examples

from tfclf.data.labels import LabelSpace
from tfclf.errors import TfclfError

SETTINGS = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
SUFFIXES = st.sampled_from([".csv", ".tsv", ".jsonl"])
TASKS = st.sampled_from(["binary", "multiclass", "multilabel"])


def read_or_refuse(path, task, columns=Columns()):
    """The reader's contract: Examples whose fields line up, or a TfclfError with a message."""
    try:
        examples = load_examples(path, columns, task=task)
    except TfclfError as err:
        assert str(err).strip(), "an error must say something"
        return None
    assert len(examples.texts) == len(examples.labels) == len(examples.rows)
    assert all(isinstance(t, str) and t.strip() for t in examples.texts)
    try:
        LabelSpace.fit(examples, task).encode(examples)
    except TfclfError:
        pass
    return examples


@SETTINGS
@given(content=st.binary(max_size=2000), suffix=SUFFIXES, task=TASKS)
def test_random_bytes(tmp_path_factory, content, suffix, task):
    path = tmp_path_factory.mktemp("bytes") / f"data{suffix}"
    path.write_bytes(content)
    read_or_refuse(path, task)


@SETTINGS
@given(body=st.text(max_size=1000), suffix=SUFFIXES, task=TASKS)
def test_random_unicode_after_a_valid_header(tmp_path_factory, body, suffix, task):
    path = tmp_path_factory.mktemp("text") / f"data{suffix}"
    header = "" if suffix == ".jsonl" else ("text,labels\n" if suffix == ".csv" else "text\tlabels\n")
    path.write_bytes((header + body).encode("utf-8", errors="replace"))  # lone surrogates become "?"
    read_or_refuse(path, task)


CELL = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\t\\x1')), max_size=12)


@SETTINGS
@given(rows=st.lists(st.lists(CELL, min_size=1, max_size=4), min_size=1, max_size=20), task=TASKS)
def test_broken_quoting_and_ragged_rows(tmp_path_factory, rows, task):
    path = tmp_path_factory.mktemp("quote") / "data.csv"
    path.write_text("text,labels\n" + "\n".join(",".join(r) for r in rows), encoding="utf-8")
    read_or_refuse(path, task)


@SETTINGS
@given(names=st.lists(st.sampled_from(["text", "labels", "a", "b"]), min_size=1, max_size=5))
def test_duplicate_columns(tmp_path_factory, names):
    path = tmp_path_factory.mktemp("dup") / "data.csv"
    path.write_text(",".join(names) + "\n" + ",".join("x" for _ in names) + "\n", encoding="utf-8")
    examples = read_or_refuse(path, "multiclass")
    if len(set(names)) < len(names):
        assert examples is None


LABEL = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True),
                  st.text(max_size=5), st.lists(st.one_of(st.text(max_size=3), st.integers(0, 2)), max_size=3),
                  st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))
TEXT = st.one_of(st.none(), st.text(max_size=20), st.integers(), st.lists(st.integers(), max_size=2))


@SETTINGS
@given(records=st.lists(st.fixed_dictionaries({"text": TEXT, "labels": LABEL}), min_size=1, max_size=15),
       task=TASKS)
def test_mixed_label_and_text_types_in_json_lines(tmp_path_factory, records, task):
    path = tmp_path_factory.mktemp("mixed") / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    read_or_refuse(path, task)


def test_ten_megabyte_line_is_read_with_bounded_memory(tmp_path):
    path = tmp_path / "big.csv"
    big = "word " * (2 * 1024 * 1024)  # 10 MiB of text in one cell
    path.write_text(f"text,labels\n{big},a\nsmall,b\n", encoding="utf-8")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    examples = load_examples(path, task="multiclass")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(examples.texts[0]) == len(big) and examples.labels == [["a"], ["b"]]
    assert grown_mib < 200  # a few copies of 10 MiB, not unbounded


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_ten_megabyte_line_without_newline_at_end(tmp_path, suffix):
    path = tmp_path / f"big{suffix}"
    text = "x" * (10 * 1024 * 1024)
    path.write_text(f"text,labels\n{text},a" if suffix == ".csv" else json.dumps({"text": text, "labels": "a"}),
                    encoding="utf-8")
    assert len(load_examples(path, task="multiclass").texts[0]) == len(text)
