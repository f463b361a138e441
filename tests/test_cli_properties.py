"""Property: whatever values a user gives the options of train, pretrain, evaluate, predict,
export, report and explain, the CLI answers with one line and exit 2, or goes on to the work, never a traceback.

The commands run in this process and stop where TensorFlow would load (everything a user can
get wrong in an option is checked before that); the work itself is tested elsewhere."""
import contextlib
import io
import shutil

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tfclf import cli
from tfclf.cli import commands
from tfclf.config import PRETRAIN, RUN

VALUES = st.one_of(st.integers(-5, 10**7).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["0", "1", "0.5", "1e-4", "", "-", "abc", "head", "lstm", "balanced"]),
                   st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6))


class Reached(Exception):
    """The command got past every check and would now load TensorFlow."""


@pytest.fixture(scope="module")
def folders(tiny_run, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-props")
    unfinished = tmp / "unfinished"
    shutil.copytree(tiny_run / "run", unfinished)
    (unfinished / "labels.json").unlink()
    return {"run": tiny_run / "run", "unfinished": unfinished, "missing": tmp / "missing", "data": tiny_run / "valid.csv",
            "tmp": tmp}


def run(argv: list[str], monkeypatch) -> tuple[str, str]:
    def stop():
        raise Reached

    monkeypatch.setattr(commands, "import_tensorflow_quietly", stop)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = cli.main(argv)
        except Reached:
            return "reached", err.getvalue()
        except SystemExit as exit_:
            status = exit_.code
    return str(status), err.getvalue()


def assert_exit_2_one_line_or_reached(outcome: str, err: str) -> None:
    """Exit 2 with one line; or the work: reached TensorFlow, or done without it (report, exit 0)."""
    assert "Traceback" not in err
    if outcome not in ("reached", "0"):
        assert outcome == "2", (outcome, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tfclf: error:"), err


def options(table, data):
    names = data.draw(st.lists(st.sampled_from([s for s in table if s.cli and s.type is not bool]), max_size=4,
                               unique_by=lambda s: s.name))
    return [part for s in names for part in (s.option, data.draw(VALUES))]


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.data())
def test_train_and_pretrain_options(tiny_bert, folders, monkeypatch, data):
    chosen = options(RUN, data)
    argv = ["train", "--train", str(folders["data"]), "--task", "multiclass", "--model", str(tiny_bert),
            "--out", str(folders["tmp"] / "out"), *chosen]
    outcome, err = run(argv, monkeypatch)
    assert_exit_2_one_line_or_reached(outcome, err)
    chosen = options(PRETRAIN, data)
    argv = ["pretrain", "--text", str(folders["data"]), "--model", str(tiny_bert), "--out", str(folders["tmp"] / "lm"),
            *chosen]
    assert_exit_2_one_line_or_reached(*run(argv, monkeypatch))


@SETTINGS
@given(data=st.data())
def test_evaluate_predict_and_export_arguments(folders, monkeypatch, data):
    folder = data.draw(st.sampled_from(["run", "unfinished", "missing", "data"]))
    run_dir = str(folders[folder])
    text_column = data.draw(st.sampled_from([[], ["--text-column", "text"], ["--text-column", "nope"]]))
    commands = [
        ["evaluate", "--run", run_dir, "--data", str(data.draw(st.sampled_from([folders["data"], folders["missing"]])))],
        ["predict", "--run", run_dir, "--text", data.draw(VALUES)],
        ["predict", "--run", run_dir, "--data", str(folders["data"]), *text_column],  # no --out: an error
        ["predict", "--saved-model", run_dir, "--text", data.draw(VALUES)],
        ["export", "--run", run_dir, "--out", str(folders["tmp"] / "sm"), "--version", data.draw(VALUES)],
        ["report", "--run", run_dir],
        ["explain", "--run", run_dir, "--text", data.draw(VALUES), "--steps", data.draw(VALUES),
         *data.draw(st.sampled_from([[], ["--label", "pos"], ["--label", data.draw(VALUES)]]))],
    ]
    argv = data.draw(st.sampled_from(commands))
    outcome, err = run(argv, monkeypatch)
    assert_exit_2_one_line_or_reached(outcome, err)
