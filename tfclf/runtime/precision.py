"""Numeric precision: what a model computes in, decided here and carried by the model itself.

A precision belongs to a model, not to the process: its layers take it when they are built
(models/layers.py), and every graph the model is traced into (training, prediction, evaluation,
export) carries it. Two models of different precision live side by side in one process, and a
float32 SavedModel is float32 wherever it is loaded. Nothing here switches a process-wide
option (tests/test_precision.py fails if anything does).

The precisions a model is built in:

- `float32`;
- `matmul_bfloat16`: every variable and every element-wise op (GELU, LayerNorm, softmax, the
  optimizer) float32, the encoder's matrix multiplies in bfloat16: their inputs cast to bf16
  in the graph and their products back to float32. oneDNN runs them on its bf16 kernels on
  CPUs with AVX512-BF16 or AMX; elsewhere they run too, emulated and slower. Converting the
  element-wise ops as well (Keras's `mixed_bfloat16`) was slower on AVX512-BF16 cores, which
  have no fast bf16 kernels for them (docs/BENCHMARKS.md);
- `mixed_bfloat16`, `mixed_float16`: Keras policies (TPUs and recent GPUs; GPUs), passed to
  each layer as it is built.

`auto` (the default) is decided by `for_training` and `for_prediction`, in this module only:
bf16 matmuls on CPUs that have bf16 instructions and no GPU, float32 elsewhere; predictions of
multi-label tasks stay float32 (`for_prediction` says why). On the 2-core AVX512-BF16 machine
tfclf was built on, this trained 1.2x as fast with the same GoEmotions dev macro-F1.

`TFCLF_TEST_PRECISION` (matmul_bfloat16 or float32) makes `auto` choose that branch whatever
the CPU, and lets `require` pass: the test suite runs the branch of the other CPU classes on
the machine it has (Makefile).
"""
from __future__ import annotations

import os

from tfclf.console import notice
from tfclf.runtime import cpu

# The precisions a run can ask for (--precision), each with the Keras policy its layers are built
# in: auto and matmul_bfloat16 build float32 layers whose matmuls cast to bf16.
POLICIES = {"auto": "float32", "float32": "float32", "matmul_bfloat16": "float32",
            "mixed_bfloat16": "mixed_bfloat16", "mixed_float16": "mixed_float16"}

# What a model is built in, once `auto` is decided.
BUILT = ("float32", "matmul_bfloat16", "mixed_bfloat16", "mixed_float16")

# The precisions that build float32 layers: what `tfclf pretrain` offers (its masked-LM model is
# saved in float32).
GRAPH_ONLY = tuple(name for name, policy in POLICIES.items() if policy == "float32")

# What `tfclf predict`, `evaluate` and `explain` (and TextClassifier.load) may ask for: the
# precisions whose weights are the float32 ones a run folder holds.
FOR_PREDICTION = GRAPH_ONLY

# What `tfclf export --precision` writes: bfloat16 is a matmul_bfloat16 model in the SavedModel.
EXPORT = ("float32", "bfloat16")

FORCE = "TFCLF_TEST_PRECISION"  # matmul_bfloat16 or float32: the branch `auto` takes, whatever the CPU


def policy(built: str) -> str:
    """The Keras dtype policy of a model built in `built` (one of BUILT)."""
    return POLICIES[built]


def matmul_dtype(built: str) -> str | None:
    """bfloat16 where a model built in `built` casts its matmuls, else None."""
    return "bfloat16" if built == "matmul_bfloat16" else None


def forced() -> str | None:
    """The branch TFCLF_TEST_PRECISION forces, or None."""
    found = os.environ.get(FORCE, "").strip()
    if found and found not in ("matmul_bfloat16", "float32"):
        from tfclf.errors import TfclfError

        raise TfclfError(f"{FORCE} must be matmul_bfloat16 or float32, got {found!r}")
    return found or None


def cpu_has_bfloat16() -> bool:
    """AVX512-BF16 or AMX: the CPUs with bf16 matmul instructions.

    Elsewhere bf16 matmuls are no use: on AVX-512 without BF16 oneDNN emulates them, 1.8x slower
    than float32 (a 256x384x1536 matmul, 9.6 ms against 5.2 ms on an Intel Xeon Cascade Lake)."""
    return cpu.has_bfloat16_matmuls()


def bfloat16_is_fast() -> bool:
    """Whether `auto` takes bf16 matmuls here: a bf16 CPU without GPUs, or the test switch says so."""
    found = forced()
    if found is not None:
        return found == "matmul_bfloat16"
    if not cpu_has_bfloat16():
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def require(name: str) -> None:
    """Stop before training when `name` asks for bf16 matmuls this CPU cannot run fast.

    Checked at the boundary (fit, pretrain, the CLI), not when a run folder loads: a run trained
    with bf16 matmuls elsewhere still loads here, and predicts in float32."""
    if name == "matmul_bfloat16" and not cpu_has_bfloat16() and forced() != "matmul_bfloat16":
        from tfclf.errors import TfclfError, option

        raise TfclfError(f"{option('precision', value='matmul_bfloat16')} needs a CPU with AVX512-BF16 or AMX, "
                         f"and this one has neither (oneDNN would run slow emulated bf16): use "
                         f"{option('precision', value='auto')} or float32")


def for_training(name: str) -> str:
    """What a model trained with --precision `name` is built in (one of BUILT)."""
    if name == "auto":
        return "matmul_bfloat16" if bfloat16_is_fast() else "float32"
    return name


def for_prediction(name: str, task: str) -> str:
    """What a `task` model of --precision `name` predicts in (one of BUILT): bf16 matmuls where the
    CPU runs them fast and either they were asked for, or `auto` chose them for a single-label task;
    float32 for the other graph-only precisions; a Keras policy is the layers' own.

    Why not multi-label under `auto`: bf16 rounds each matmul's output to 8 bits of mantissa,
    and a multi-label text changes its label set when any of its labels crosses its threshold.
    On GoEmotions dev (28 labels, tuned thresholds) 93 of 5,426 label sets changed (98.3 %
    identical, under the 99.5 % asked); on TREC-6 and BBC News every label stayed
    (docs/BENCHMARKS.md, "bf16 inference"). Nor regression: its score is the answer itself, and
    bf16's rounding would show in every digit a user reads; no measurement says it is small enough."""
    if POLICIES[name] != "float32":
        return name
    wanted = name == "matmul_bfloat16" or (name == "auto" and task not in ("multilabel", "regression"))
    return "matmul_bfloat16" if wanted and bfloat16_is_fast() else "float32"


def for_export(name: str) -> str:
    """What `tfclf export --precision name` builds the SavedModel's model in."""
    if name not in EXPORT:
        from tfclf.errors import TfclfError

        raise TfclfError(f"export precision must be one of {', '.join(EXPORT)}, got {name!r}")
    return "matmul_bfloat16" if name == "bfloat16" else "float32"


AUTO_BF16_NOTICE = ("this CPU has bfloat16 matmuls: training runs them in bf16, and single-label predictions "
                    "(--precision float32 turns this off)")


def announce(name: str) -> None:
    """Say on stderr, once, as training starts, where `auto` chose bf16 matmuls: every check on the
    input and the settings has passed by then, so the notice never comes before an error."""
    if name == "auto" and for_training(name) == "matmul_bfloat16":
        notice(AUTO_BF16_NOTICE)
