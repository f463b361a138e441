"""Every bad-input case of the CLI: exit status 2, one clear line naming file and row, no traceback."""
import contextlib
import io
import json
import os
import subprocess
import sys

import pytest


def tfclf(*args, env=None):
    """The command in this process (what it prints and its exit status are what a process gives:
    tests/test_console.py runs the console script itself); with `env`, in a process of its own,
    since the Hugging Face Hub client reads its environment once, when it is imported."""
    if env is not None:
        return subprocess.run([sys.executable, "-m", "tfclf", *map(str, args)], capture_output=True, text=True,
                              timeout=300, env={**os.environ, **env})
    from tfclf import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exit_:  # argparse's own refusals
            code = exit_.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


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


# ------------------------------------------------------------------ options and run folders
BAD_OPTIONS = [  # (extra train options, expected fragment of the one error line)
    (["--dropout", "1.5"], "--dropout must be in [0, 1), got 1.5"),
    (["--seed", "-1"], "--seed must be in [0, 4294967295], got -1"),
    (["--warmup", "-0.1"], "--warmup must be in [0, 1], got -0.1"),
    (["--head-lr", "-1"], "--head-lr must be greater than 0"),
    (["--head-lr", "0"], "--head-lr must be greater than 0"),  # was ignored silently
    (["--lr", "nan"], "--lr must be a number, got nan"),
    (["--epochs", "1.5"], "argument --epochs: invalid int value: '1.5'"),
    (["--max-length", "10000"], "--max-length must be in [3, 8192], got 10000"),
    (["--chunk-stride", "200"], "--chunk-stride must be less than --max-length - 2"),
]


@pytest.mark.parametrize("extra,fragment", BAD_OPTIONS, ids=[" ".join(e) for e, _ in BAD_OPTIONS])
def test_bad_option_values_are_one_line(tmp_path, extra, fragment):
    f = tmp_path / "t.csv"
    f.write_text("text,labels\na,x\nb,y\n")
    assert_user_error(train(f, *extra), fragment)


def test_max_length_past_the_checkpoints_positions(tiny_bert, tmp_path):
    import shutil

    # the check reads config.json before any weights load: a copy that says 64 positions is enough
    short = shutil.copytree(tiny_bert, tmp_path / "short")
    config = json.loads((short / "config.json").read_text())
    (short / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 64}))
    f = tmp_path / "t.csv"
    f.write_text("text,labels\na,x\nb,y\n")
    assert_user_error(train(f, "--model", short, "--max-length", "128"), "its positions stop at 64")
    assert_user_error(tfclf("pretrain", "--text", f, "--model", short, "--max-length", "128", "--out", tmp_path / "lm"),
                      "its positions stop at 64")


def test_unfinished_and_damaged_run_folders(tiny_run, tmp_path):
    import shutil

    from tfclf.storage.run_folder import staging

    unfinished = tmp_path / "unfinished"  # as a training killed before its first run finished leaves it
    staging(unfinished).mkdir(parents=True)
    shutil.copy(tiny_run / "run" / "config.json", staging(unfinished))
    data = tiny_run / "valid.csv"
    for command in (["evaluate", "--run", unfinished, "--data", data], ["report", "--run", unfinished],
                    ["predict", "--run", unfinished, "--text", "x"], ["export", "--run", unfinished, "--out", tmp_path]):
        assert_user_error(tfclf(*command), "no finished run yet: its training has not finished", "resumes it")
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_run / "run", damaged)
    (damaged / "labels.json").unlink()  # a finished run is published whole: this one was damaged since
    for command in (["evaluate", "--run", damaged, "--data", data], ["predict", "--run", damaged, "--text", "x"]):
        assert_user_error(tfclf(*command), "a damaged run (no labels.json)", "--overwrite")
    shutil.copy(tiny_run / "run" / "labels.json", damaged)
    (damaged / "config.json").write_text("{\"task\": ")
    assert_user_error(tfclf("evaluate", "--run", damaged, "--data", data), "config.json: not a readable config.json")
    (damaged / "config.json").write_text("{\"task\": \"multiclass\", \"dropout\": 7}")
    assert_user_error(tfclf("evaluate", "--run", damaged, "--data", data), "config.json: --dropout must be in [0, 1)")
    assert_user_error(tfclf("export", "--run", tiny_run / "run", "--out", tmp_path / "sm", "--version", "0"),
                      "--version must be a positive integer")


def test_predict_on_a_savedmodel_tfclf_did_not_write(tmp_path):
    import tensorflow as tf

    tf.saved_model.save(tf.Module(), str(tmp_path / "foreign" / "1"))
    assert_user_error(tfclf("predict", "--saved-model", tmp_path / "foreign" / "1", "--text", "x"),
                      "not one written by tfclf export")
