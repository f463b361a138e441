"""Files and folders written atomically: a crash, or a reader at any moment, finds the old one or
the new one, never half of one (TF Serving's rule for its version folders); and JSON read back."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from tfclf.errors import TfclfError


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
    try:
        found = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TfclfError(f"{path}: not a readable {what} ({err})") from None
    if not isinstance(found, dict):
        raise TfclfError(f"{path}: not a readable {what} (a JSON object expected)")
    return found


def replace_folder(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Write a folder beside `target`, then swap it in: a reader, or a crash at any moment,
    finds the old folder or the new one, never half of one and never neither."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old")
    if old.exists() and not target.exists():  # an earlier swap stopped between its two renames
        old.rename(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new."))
    try:
        write(tmp)
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        try:
            tmp.rename(target)
        except BaseException:
            if old.exists() and not target.exists():
                old.rename(target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
