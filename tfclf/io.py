"""Atomic file writes (a crash leaves the old file or the new one, never half of one), and the
progress bar that long predictions show on stderr."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix, so writers that go by it still work); renamed
    onto `path` when the block ends, removed if it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename it into place."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_json_object(path: str | Path, what: str) -> dict:
    """A JSON object from `path`; a file that is not one is said in one line naming it."""
    from tfclf.errors import TfclfError

    try:
        found = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TfclfError(f"{path}: not a readable {what} ({err})") from None
    if not isinstance(found, dict):
        raise TfclfError(f"{path}: not a readable {what} (a JSON object expected)")
    return found


def predicting_bar(batches: Iterable, total: int | None = None, show: bool = True, desc: str = "predicting",
                   unit: str = "batch") -> Iterable:
    """`batches` unchanged, with a tqdm bar on stderr when `show`."""
    if not show:
        return batches
    from tqdm.auto import tqdm

    return tqdm(batches, total=total, desc=desc, unit=unit, file=sys.stderr)
