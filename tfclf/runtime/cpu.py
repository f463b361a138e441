"""What this CPU can do, from Linux's /proc/cpuinfo: the facts speed depends on.

Used to decide bf16 matmuls (tfclf.runtime.precision) and to name the CPU beside every speed figure
(benchmarks/): the same code runs at very different speeds on AVX2, AVX-512 and AVX512-BF16
or AMX machines.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

# The instruction sets that change which kernels oneDNN and Eigen run.
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def flags() -> set[str]:
    found = re.search(r"^flags\s*:(.*)$", _cpuinfo(), re.MULTILINE)
    return set(found.group(1).split()) if found else set()


def model() -> str:
    found = re.search(r"^model name\s*:(.*)$", _cpuinfo(), re.MULTILINE)
    return found.group(1).strip() if found else "unknown CPU"


def has_bfloat16_matmuls() -> bool:
    """AVX512-BF16 or AMX: bf16 matmul instructions."""
    return bool(flags() & {"avx512_bf16", "amx_bf16"})


def cpu_class() -> str:
    """The class speed figures are reported by: AMX, AVX512-BF16, AVX-512, AVX2 or older."""
    present = flags()
    for name, flag in (("AMX", "amx_bf16"), ("AVX512-BF16", "avx512_bf16"), ("AVX-512", "avx512f"), ("AVX2", "avx2")):
        if flag in present:
            return name
    return "pre-AVX2"


def describe() -> dict:
    """The CPU as benchmarks record it beside their figures."""
    return {"model": model(), "class": cpu_class(), "flags": [f for f in FLAGS if f in flags()],
            "cores": len(os.sched_getaffinity(0))}
