"""What runs beside model.fit: the best epoch kept, early stopping, the backup a killed run
resumes from, history.csv and TensorBoard logs."""
from __future__ import annotations

from pathlib import Path

import tf_keras as keras

from tfclf.storage.run_folder import read_history, write_history


class HistoryCSV(keras.callbacks.Callback):
    """history.csv, rewritten atomically after every epoch, so a crash keeps what was done.

    Rows are keyed by epoch: a resumed run that repeats an epoch replaces its row."""

    def __init__(self, path: Path, resume: bool = False):
        super().__init__()
        self.path = Path(path)
        self.rows: dict[int, dict] = {r["epoch"]: r for r in read_history(self.path)} if resume else {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"})
        self.rows[epoch + 1] = row
        write_history(self.path, [self.rows[k] for k in sorted(self.rows)])


def callbacks(run_dir: Path, monitor: str, patience: int, has_validation: bool, resume: bool = False,
              history_csv: bool = True, mode: str = "max", kept: bool = True) -> list:
    """Best weights and early stopping on the validation metric, a backup for resuming, TensorBoard,
    history.csv (not on a multi-worker job's non-chief workers; Keras's own callbacks write those
    workers' files to scratch folders it removes). Order matters for a kill at any moment: the
    checkpoint of an epoch is written before its backup, and the backup before its history row.
    A fit whose folder nothing keeps (`kept` False: no run_dir) gets no backup and no TensorBoard
    logs: no one could resume from them or read them (the backup cost ~10 % of a small fit)."""
    best = max if mode == "max" else min  # tasks.monitor_mode: regression's error is better lower
    best_so_far = best((r[monitor] for r in read_history(run_dir / "history.csv") if monitor in r),
                       default=None) if resume else None
    found = []
    if has_validation:
        found += [
            keras.callbacks.ModelCheckpoint(str(run_dir / "checkpoints" / "best"), monitor=monitor, mode=mode,
                                            save_best_only=True, save_weights_only=True, verbose=0,
                                            initial_value_threshold=best_so_far),
            keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, verbose=1,
                                          baseline=best_so_far),
        ]
    if kept:
        found.append(keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False))
    if history_csv:
        found.append(HistoryCSV(run_dir / "history.csv", resume=resume))
    if kept:
        found.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), update_freq="epoch"))
    return found
