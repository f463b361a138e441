"""Errors in the caller's words: a bad setting is named by its argument in Python (`max_length`) and
by its flag on the command line (`--max-length`), with the same message otherwise; `--version`."""
from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tfclf import TextClassifier, TfclfError, cli
from tfclf.cli import commands
from tfclf.config import RUN, RunConfig

RANGED = [s for s in RUN if s.cli and s.type in (int, float) and s.high is not None]


def _out_of_range(setting, data) -> str:
    return repr(data.draw(st.sampled_from([setting.high * 2 + 1, -1 - abs(setting.high)])))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_setting_out_of_range_is_named_as_its_caller_names_it(tiny_bert, monkeypatch, data):
    setting = data.draw(st.sampled_from(RANGED))
    value = _out_of_range(setting, data)
    number = setting.type(float(value))
    with pytest.raises(TfclfError) as raised:
        RunConfig(**{setting.name: number})
    python = str(raised.value)
    assert python.startswith(f"{setting.name} must be ") and "--" not in python, python
    monkeypatch.setattr(commands, "import_tensorflow_quietly", lambda: pytest.fail("got past the checks"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = cli.main(["train", "--train", "unused.csv", "--task", "binary", "--model", str(tiny_bert),
                           "--out", "unused", setting.option, value])
    assert status == 2
    assert err.getvalue() == f"tfclf: error: {python.replace(setting.name, setting.option, 1)}\n"


def test_the_python_api_says_max_length_and_the_cli_says_the_flag(tiny_bert, capsys):
    with pytest.raises(TfclfError, match=r"^max_length must be in \[3, 8192\], got 10000$"):
        TextClassifier.from_pretrained(str(tiny_bert), task="binary", max_length=10000)
    with pytest.raises(TfclfError, match=r"^max_length 1000 is longer than .* can read: its positions stop at 512$"):
        TextClassifier.from_pretrained(str(tiny_bert), task="binary", max_length=1000)
    with pytest.raises(TfclfError, match="^model .*: no such checkpoint folder$"):
        TextClassifier.from_pretrained("./no-such-folder", task="binary")
    with pytest.raises(TfclfError, match=r"chunk_stride must be less than max_length - 2 \(30\), got 40"):
        TextClassifier(task="binary", max_length=32, chunk_stride=40).config
    assert cli.main(["train", "--train", "x.csv", "--task", "binary", "--model", str(tiny_bert), "--out", "o",
                     "--max-length", "32", "--chunk-stride", "40"]) == 2
    assert "--chunk-stride must be less than --max-length - 2 (30), got 40" in capsys.readouterr().err


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"tfclf {version('tfclf')} (Python ")
