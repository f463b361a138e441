"""What tfclf says on stderr besides its errors: warnings, notices and progress bars.

Every line tfclf itself writes starts with "tfclf:", so that a user (and a test) can tell it
from what TensorFlow, Keras or a notebook print.
"""
from __future__ import annotations

import sys
from typing import Iterable


def warn(message: str) -> None:
    print(f"tfclf: warning: {message}", file=sys.stderr)


def notice(message: str) -> None:
    print(f"tfclf: {message}", file=sys.stderr, flush=True)


def predicting_bar(batches: Iterable, total: int | None = None, show: bool = True, desc: str = "predicting",
                   unit: str = "batch") -> Iterable:
    """`batches` unchanged, with a tqdm bar on stderr when `show`."""
    if not show:
        return batches
    from tqdm.auto import tqdm

    return tqdm(batches, total=total, desc=desc, unit=unit, file=sys.stderr)
