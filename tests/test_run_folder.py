"""The folder swap (a crash at any moment leaves the old folder or the new one) and the run
folder's lock."""
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
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()


def _config():
    from tfclf.config import RunConfig

    return RunConfig(model="unused", task="binary")


HOLD = """
import sys, time
from pathlib import Path
from tfclf.storage import lock
with lock.exclusive(Path(sys.argv[1]), "busy"):
    print("held", flush=True)
    time.sleep(120)
"""


def hold_lock(path: Path):
    """Another process holding `path`'s lock (as another tfclf training would), until killed."""
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_training_into_a_locked_folder_stops_with_one_line(tmp_path):
    """Two `tfclf train --out RUN` at once: the second used to take the first's backup as its own.
    The lock is the OS's own: it names its holder (host and process), and goes with it."""
    import socket

    from tfclf.errors import TfclfError
    from tfclf.storage.run_folder import aside
    from tfclf.storage.training import training_in

    run = tmp_path / "run"
    holder = hold_lock(aside(run) / "train.lock")
    try:
        with pytest.raises(TfclfError, match=f"another tfclf training is writing this run folder.*process "
                                             f"{holder.pid} on {socket.gethostname()}"):
            with training_in(run, _config(), {}):
                pass
    finally:
        holder.kill()
        holder.wait()
    with training_in(run, _config(), {}) as training:  # killed: the OS released its lock
        assert training.work.is_dir() and not training.resume


def test_a_stale_lock_file_with_this_very_pid_is_no_obstacle(tmp_path):
    """A container restarted as PID 1 found its own PID in the old lock file and was refused forever
    (a crash loop under restartPolicy OnFailure). The file's content decides nothing now."""
    import os
    import socket

    from tfclf.storage.run_folder import aside
    from tfclf.storage.training import training_in

    run = tmp_path / "run"
    aside(run).mkdir(parents=True)
    (aside(run) / "train.lock").write_text(f"{socket.gethostname()} {os.getpid()}\n")
    with training_in(run, _config(), {}):
        pass


def test_only_one_of_two_racing_trainings_gets_the_folder(tmp_path):
    """The old takeover of a stale lock could delete a lock read between another run's open and
    write; flock has no such moment: of many attempts at once, exactly one holds it."""
    import threading

    from tfclf.errors import TfclfError
    from tfclf.storage.run_folder import aside
    from tfclf.storage.training import training_in

    run, inside, refused, barrier = tmp_path / "run", [], [], threading.Barrier(8)
    release = threading.Event()

    def attempt():
        barrier.wait()
        try:
            with training_in(run, _config(), {}):
                inside.append(1)
                release.wait(30)  # held until every other attempt was made: a late thread on a loaded
        except TfclfError:        # machine must not find the folder free again and count as a winner
            refused.append(1)
            if len(refused) == 7:
                release.set()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert len(inside) == 1 and len(refused) == 7
    assert (aside(run) / "train.lock").is_file()


def test_the_lock_is_released_when_training_fails(tmp_path):
    from tfclf.storage.training import training_in

    with pytest.raises(RuntimeError):
        with training_in(tmp_path / "run", _config(), {}):
            raise RuntimeError("training crashed")
    with training_in(tmp_path / "run", _config(), {}):  # free again
        pass


def test_fit_into_a_folder_another_training_holds_is_refused(tiny_bert, tmp_path):
    from tfclf import TextClassifier
    from tfclf.errors import TfclfError
    from tfclf.storage.run_folder import aside

    holder = hold_lock(aside(tmp_path / "run") / "train.lock")
    try:
        X, y = signal_texts(40, 0)
        clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", epochs=1, batch_size=8, max_length=16)
        with pytest.raises(TfclfError, match="another tfclf training is writing this run folder"):
            clf.fit(X, y, run_dir=tmp_path / "run", verbose=0)
        assert clf.model is None
    finally:
        holder.kill()
        holder.wait()
