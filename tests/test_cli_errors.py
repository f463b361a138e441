"""Every bad-input case of the CLI: exit status 2, one clear line naming file and row, no traceback."""
import os
import subprocess
import sys

import pytest


def tfclf(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tfclf", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [l for l in result.stderr.splitlines() if l.startswith("tfclf: error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def train(data, *extra, env=None):
    return tfclf("train", "--train", data, "--task", "multiclass", "--out", data.parent / "run", *extra, env=env)


def test_missing_file(tmp_path):
    assert_user_error(train(tmp_path / "nope.csv"), "nope.csv: no such file")


BAD_FILES = [  # (file name, content, expected fragments of the one error line)
    ("t.csv", "body,labels\nhello,a\n", ["t.csv: no column 'text' (columns: body, labels)", "--text-column"]),
    ("t.csv", "text,label\nhello,a\n", ["no column 'labels'", "--label-column"]),
    ("t.csv", "", ["t.csv: the file is empty"]),
    ("t.csv", "text,labels\n", ["t.csv: a header but no data rows"]),
    ("t.csv", "text,labels\nfine,a\n,b\n  ,a\n", ["t.csv line 3: the text is empty (and 1 more rows)",
                                                   "--drop-empty"]),
    ("t.jsonl", '{"text": "a", "labels": "x"}\n{"labels": "y"}\n', ["t.jsonl line 2: the text is empty"]),
    ("t.jsonl", '{"text": "a", "labels": "x"}\n{"text": "b", \n', ["t.jsonl line 2: not valid JSON"]),
    ("t.csv", "text,labels\na,same\nb,same\n", ["fewer than two classes in the labels (only 'same')"]),
    ("t.csv", b"text,labels\nfine,a\ncaf\xe9,b\n", ["t.csv line 3: byte 0xe9 at column 4 is not valid utf-8",
                                                    "--encoding"]),
    ("t.csv", 'text,labels\n"a, b",x\na, b,x\n', ["t.csv line 3: 3 fields where the header has 2"]),
    ("t.csv", 'text,labels\n"never closed,x\n', ["t.csv line", "broken CSV"]),
    ("t.csv", "text,text\na,b\n", ["t.csv line 1: the column 'text' appears twice"]),
    ("t.xlsx", "text,labels\n", ["unknown file type '.xlsx'"]),
]


@pytest.mark.parametrize("name,content,fragments", BAD_FILES)
def test_bad_training_file(tmp_path, name, content, fragments):
    f = tmp_path / name
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert_user_error(train(f), *fragments)


def test_unseen_label_in_validation_stops_before_training(tmp_path):
    f, v = tmp_path / "t.csv", tmp_path / "v.csv"
    f.write_text("text,labels\na,x\nb,y\n")
    v.write_text("text,labels\na,x\nb,zzz\n")
    assert_user_error(train(f, "--valid", v), "v.csv line 3: label 'zzz' was never seen in training")


def test_unseen_label_at_evaluation(tiny_run, tmp_path):
    f = tmp_path / "test.csv"
    f.write_text("text,labels\ngame day,sport\nthe vote,weather\n")
    assert_user_error(tfclf("evaluate", "--run", tiny_run / "run", "--data", f),
                      "test.csv line 3: label 'weather' was never seen in training",
                      "known: 'politics', 'sport', 'tech'")


def test_run_folder_that_is_not_one(tmp_path):
    assert_user_error(tfclf("predict", "--run", tmp_path, "--text", "x"), "not a tfclf run folder")


def test_model_folder_without_config(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("text,labels\na,x\nb,y\n")
    (tmp_path / "ckpt").mkdir()
    assert_user_error(train(f, "--model", tmp_path / "ckpt"), "no config.json")


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_hub_name_offline_is_one_line(tmp_path, env):
    f = tmp_path / "t.csv"
    f.write_text("text,labels\na,x\nb,y\n")
    result = train(f, "--model", "google-bert/bert-base-uncased", env={**env, "HF_HOME": str(tmp_path / "hf")})
    assert_user_error(result, "--model google-bert/bert-base-uncased: not a local folder",
                      "Hugging Face Hub did not provide it")
