"""What the tfclf command says on stderr: its own lines, the same on every CPU class, and none of
TensorFlow's log lines."""
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from conftest import signal_texts
from tfclf import cli
from tfclf.runtime.precision import AUTO_BF16_NOTICE

BF16_CLASSES = ("AVX512-BF16", "AMX")
TENSORFLOW_LOG_LINE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl::InitializeLog)")


def tfclf_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("tfclf:")]


def write_data(folder, n=120):
    texts, labels = signal_texts(n, 0)
    pd.DataFrame({"text": texts, "labels": labels}).to_csv(folder / "train.csv", index=False)
    (folder / "corpus.txt").write_text("\n".join(texts), encoding="utf-8")
    return folder / "train.csv"


def test_errors_and_the_bf16_notice_on_every_cpu_class(cpu_class, tiny_bert, tmp_path, capsys):
    """An error found after TensorFlow loads is the only tfclf line; the bf16 notice comes once,
    when training starts (after the settings tfclf chose), on the classes with bf16 matmuls only."""
    data = write_data(tmp_path)
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    for name in ("config.json", "vocab.txt"):
        (no_weights / name).write_bytes((tiny_bert / name).read_bytes())
    for argv in (["train", "--train", data, "--task", "binary", "--model", no_weights, "--out", tmp_path / "r0"],
                 ["pretrain", "--text", tmp_path / "corpus.txt", "--model", no_weights, "--out", tmp_path / "lm"]):
        assert cli.main(list(map(str, argv))) == 2
        err = capsys.readouterr().err
        assert tfclf_lines(err) == [
            f"tfclf: error: --model {no_weights}: no tf_model.h5, model.safetensors or pytorch_model.bin weights"], err
    argv = ["train", "--train", data, "--valid-fraction", "0.2", "--task", "binary", "--model", tiny_bert,
            "--epochs", "1", "--max-length", "16", "--out", tmp_path / "run"]
    assert cli.main(list(map(str, argv))) == 0
    chose = ["tfclf: learning rate 0.002, for a 32-wide checkpoint (0.0002 x (384/width)^2, at most 0.002); "
             "--lr sets another"]  # the one setting tfclf chose here (tests/test_defaults.py: the others)
    notices = [f"tfclf: {AUTO_BF16_NOTICE}"] if cpu_class in BF16_CLASSES else []
    assert tfclf_lines(capsys.readouterr().err) == chose + notices
    if cpu_class == "AMX":  # asked for float32 where auto would choose bf16: nothing to say about it
        assert cli.main(list(map(str, argv[:-1] + [tmp_path / "run2", "--precision", "float32"]))) == 0
        assert tfclf_lines(capsys.readouterr().err) == chose


def test_the_command_hides_tensorflows_log_lines(tiny_bert, tmp_path):
    """`tfclf train` and `tfclf predict` as a user runs them (no TF_CPP_MIN_LOG_LEVEL set): not one
    of TensorFlow's C++ or absl log lines on stderr."""
    data = write_data(tmp_path, 60)
    env = {k: v for k, v in os.environ.items() if k != cli.LOG_LEVEL}
    for argv in (["train", "--train", data, "--valid-fraction", "0.2", "--task", "binary", "--model", tiny_bert,
                  "--epochs", "1", "--max-length", "16", "--out", tmp_path / "run"],
                 ["predict", "--run", tmp_path / "run", "--text", "a good film", "--text", "bad"]):
        result = subprocess.run([sys.executable, "-m", "tfclf", *map(str, argv)], capture_output=True, text=True,
                                env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        assert not [line for line in result.stderr.splitlines() if TENSORFLOW_LOG_LINE.match(line)], result.stderr


def test_a_log_level_the_user_set_is_left_alone():
    environ = {}
    assert cli.hide_tensorflow_logs(environ) and environ == {cli.LOG_LEVEL: "3"}
    environ = {cli.LOG_LEVEL: "0"}
    assert not cli.hide_tensorflow_logs(environ) and environ == {cli.LOG_LEVEL: "0"}


def test_help_says_how_to_get_the_logs_back(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert f"{cli.LOG_LEVEL}=0" in " ".join(capsys.readouterr().out.split())


def test_the_python_api_leaves_logging_as_the_user_set_it(tiny_bert):
    """Building a backbone and fitting in Python change neither TensorFlow's Python logger nor absl's
    verbosity nor TF_CPP_MIN_LOG_LEVEL: only the tfclf command quiets them."""
    import logging

    import tensorflow as tf
    from absl import logging as absl_logging

    from tfclf import TextClassifier

    tf.get_logger().setLevel(logging.DEBUG)
    absl_logging.set_verbosity(absl_logging.DEBUG)
    level = os.environ.get(cli.LOG_LEVEL)
    try:
        texts, labels = signal_texts(40, 0)
        TextClassifier.from_pretrained(str(tiny_bert), task="binary", epochs=1, max_length=16).fit(texts, labels,
                                                                                                  verbose=0)
        assert tf.get_logger().level == logging.DEBUG and absl_logging.get_verbosity() == absl_logging.DEBUG
        assert os.environ.get(cli.LOG_LEVEL) == level
    finally:
        tf.get_logger().setLevel(logging.WARNING)
        absl_logging.set_verbosity(absl_logging.WARNING)


def test_the_command_starts_tensorflow_without_keras_3(monkeypatch):
    """`tfclf` (run()) sets TF_USE_LEGACY_KERAS before any work, so TensorFlow's import loads no
    Keras 3 (2 s of CPU per start); one the user set is kept, and the Python API sets nothing."""
    seen = []
    monkeypatch.setattr(cli, "main", lambda: seen.append(os.environ.get("TF_USE_LEGACY_KERAS")) or 0)
    monkeypatch.setattr(cli.atexit, "_run_exitfuncs", lambda: None)  # not the test process's handlers
    monkeypatch.setattr(cli.os, "_exit", sys.exit)
    monkeypatch.setenv(cli.LOG_LEVEL, "2")  # so that run() leaves this process's log level alone
    for given, expected in ((None, "1"), ("0", "0")):
        if given is None:
            monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
        else:
            monkeypatch.setenv("TF_USE_LEGACY_KERAS", given)
        with pytest.raises(SystemExit):
            cli.run()
        assert seen[-1] == expected
    import tfclf  # noqa: F401  (the package itself, in a process that already has it)

    assert "TF_USE_LEGACY_KERAS" not in os.environ or os.environ["TF_USE_LEGACY_KERAS"] == "0"
