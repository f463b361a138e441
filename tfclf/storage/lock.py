"""Locks the operating system keeps: `flock` on a file, released when its process ends, however it
ends (SIGKILL, a container restarted as PID 1, a machine that reboots).

The lock file holds the host and process id of its holder, for the message a second process
gets; the content decides nothing, so a stale file (the same PID after a restart, another host)
is never mistaken for a live holder. On NFS (v4), Linux maps flock to the server's byte-range
locks, so a holder on another host is seen too.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from typing import Iterator

from tfclf.errors import TfclfError


@contextlib.contextmanager
def exclusive(path: Path, busy: str, wait: bool = False) -> Iterator[None]:
    """Hold `path`'s lock inside the block. Without `wait`, a lock held elsewhere is a TfclfError:
    `busy` followed by who holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise TfclfError(f"{busy} ({holder(path)})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{socket.gethostname()} {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays, so that every process locks the same inode


def holder(path: Path) -> str:
    """Who holds the lock, as its file says: "process 123 on host-a"."""
    try:
        host, pid = path.read_text(encoding="utf-8").split()[:2]
        return f"process {pid} on {host}"
    except (OSError, ValueError):
        return "a process that has not written its name yet"
