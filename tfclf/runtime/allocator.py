"""The CPU memory allocator TensorFlow runs with: its own BFC allocator, unless told otherwise.

A training step allocates and frees hundreds of tensors of a few hundred KiB to a few MiB.
With glibc's malloc, blocks that size are mapped from the kernel and unmapped again on every
step (mmap, munmap and the page faults that follow), which on some machines put a third of
the CPU time in the kernel. TensorFlow's BFC allocator keeps the memory it has and reuses it.
Measured on one epoch of 1,024 GoEmotions comments (docs/BENCHMARKS.md, "Memory allocator"):
as fast as tcmalloc or mimalloc preloaded, with nothing to install, and the same losses.

TensorFlow reads the setting when it creates its CPU allocator, at the first tensor: tfclf
sets it on import, so `import tfclf` before any TensorFlow work (the CLI, the notebooks and
the README do). TFCLF_ALLOCATOR=system leaves the choice to TensorFlow (and to an allocator
you preload yourself); a TF_CPU_ALLOCATOR_USE_BFC you set wins over both.
"""
from __future__ import annotations

import os

ENV = "TFCLF_ALLOCATOR"
CHOICES = ("bfc", "system")


def configure(environ=os.environ) -> str:
    """Apply TFCLF_ALLOCATOR (default bfc) to the environment TensorFlow reads; returns the choice."""
    choice = environ.get(ENV, "bfc").strip().lower() or "bfc"
    if choice not in CHOICES:
        import warnings

        warnings.warn(f"{ENV}={environ[ENV]!r} is not one of {', '.join(CHOICES)}: using bfc", stacklevel=2)
        choice = "bfc"
    if choice == "bfc":
        environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "1")
    return choice
