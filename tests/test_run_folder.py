"""The one folder swap: a crash at any moment leaves the old folder or the new one."""
from pathlib import Path

import pytest

from conftest import signal_texts
from tfclf.storage.run_folder import replace_folder


def write_marker(text: str):
    def write(folder: Path) -> None:
        (folder / "marker.txt").write_text(text)

    return write


def fail_renames_of_new_folders(monkeypatch):
    """Path.rename fails when it would move a freshly written folder into place: a crash
    between the swap's two renames."""
    real = Path.rename

    def rename(self, target):
        if ".new." in self.name:
            raise OSError("simulated crash")
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)


def test_replace_folder_swaps_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "weights"
    replace_folder(target, write_marker("one"))
    replace_folder(target, write_marker("two"))
    assert (target / "marker.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]


def test_a_failed_write_or_rename_keeps_the_old_folder(tmp_path, monkeypatch):
    target = tmp_path / "weights"
    replace_folder(target, write_marker("old"))

    def broken(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        replace_folder(target, broken)
    assert (target / "marker.txt").read_text() == "old"
    fail_renames_of_new_folders(monkeypatch)
    with pytest.raises(OSError):
        replace_folder(target, write_marker("new"))
    assert (target / "marker.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]


def test_a_swap_killed_between_its_renames_is_recovered_by_the_next(tmp_path):
    target = tmp_path / "weights"
    replace_folder(target, write_marker("old"))
    target.rename(tmp_path / ".weights.old")  # killed after the first rename, before the second
    replace_folder(target, write_marker("new"))
    assert (target / "marker.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]


def test_pretrain_keeps_the_old_checkpoint_when_the_swap_fails(tiny_bert, tmp_path, monkeypatch):
    from tfclf.training.pretraining import pretrain

    texts, _ = signal_texts(64, 0)
    out = pretrain(texts, str(tiny_bert), tmp_path / "lm", max_length=32, epochs=1, batch_size=16, verbose=0,
                   precision="float32")
    before = (out / "pretraining_loss.txt").read_text()
    fail_renames_of_new_folders(monkeypatch)
    with pytest.raises(OSError):
        pretrain(texts, str(tiny_bert), out, max_length=32, epochs=1, batch_size=16, verbose=0, precision="float32",
                 seed=7)
    assert (out / "pretraining_loss.txt").read_text() == before
    assert (out / "config.json").is_file() and (out / "tf_model.h5").is_file()


def _config():
    from tfclf.config import RunConfig

    return RunConfig(model="unused", task="binary")


def test_a_second_run_into_a_locked_folder_stops_with_one_line(tmp_path):
    """Two `tfclf train --out RUN` at once: the second used to take the first's backup as its own
    and "resume" it. Now the folder's lock names the process holding it."""
    import subprocess
    import sys

    from tfclf.storage import run_folder
    from tfclf.errors import TfclfError

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(str(holder.pid))
        with pytest.raises(TfclfError, match=f"another tfclf run \\(process {holder.pid}\\)"):
            with run_folder.training_in(tmp_path, _config()):
                pass
        assert (tmp_path / ".lock").read_text() == str(holder.pid)  # the holder's lock is left alone
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale, the next run takes it, and gives it back
    with run_folder.training_in(tmp_path, _config()) as (work, resume):
        assert work == tmp_path and not resume
        assert (tmp_path / ".lock").read_text() == str(__import__("os").getpid())
    assert not (tmp_path / ".lock").exists()


def test_the_lock_is_released_when_training_fails(tmp_path):
    from tfclf.storage import run_folder

    with pytest.raises(RuntimeError):
        with run_folder.training_in(tmp_path, _config()):
            raise RuntimeError("training crashed")
    assert not (tmp_path / ".lock").exists()


def test_fit_into_a_folder_another_run_holds_is_refused(tiny_bert, tmp_path):
    import os

    from tfclf import TextClassifier
    from tfclf.errors import TfclfError

    (tmp_path / ".lock").write_text(str(os.getppid()))  # a live process other than this one
    X, y = signal_texts(40, 0)
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", epochs=1, batch_size=8, max_length=16)
    with pytest.raises(TfclfError, match="is training into this folder"):
        clf.fit(X, y, run_dir=tmp_path, verbose=0)
    assert clf.model is None
