"""Numeric precision of a run: Keras dtype policies, and bfloat16 matmuls through oneDNN.

`auto` (the default) trains with `matmul_bfloat16` on CPUs that have bf16 matmul instructions
and no GPU, and in float32 elsewhere: on the 2-core AVX512-BF16 machine tfclf was built on,
this trained 1.2x as fast with the same GoEmotions dev macro-F1. It predicts with them too for
single-label tasks, whose labels agreed with float32's on every text checked; multi-label
predictions stay float32 (see `for_prediction`). The exported
SavedModel is float32 unless `tfclf export --precision bfloat16` puts the casts in its graph
(models/bert.py `matmuls_in`), since TF Serving has no tfclf to switch the rewrite on.

`matmul_bfloat16` keeps every variable and every element-wise op (GELU, LayerNorm, softmax,
the optimizer) in float32 and runs only the matrix multiplies in bfloat16, on CPUs whose
oneDNN has bf16 kernels (AVX512-BF16, AMX). It is Grappler's oneDNN auto-mixed-precision
pass with the element-wise ops taken off its "infer" list: converting them as well (the
pass's default, or the Keras `mixed_bfloat16` policy) was slower on AVX512-BF16 cores,
because the element-wise ops run in bf16 without fast kernels (docs/BENCHMARKS.md).
"""
from __future__ import annotations

import contextlib
import os

from tfclf.console import notice
from tfclf.runtime import cpu

# The precisions a run can ask for (--precision), each with the Keras policy its layers are built
# in: auto and matmul_bfloat16 build float32 layers and convert matmuls in the graph; mixed_float16
# is for GPUs, mixed_bfloat16 for TPUs and recent GPUs.
POLICIES = {"auto": "float32", "float32": "float32", "matmul_bfloat16": "float32",
            "mixed_bfloat16": "mixed_bfloat16", "mixed_float16": "mixed_float16"}

# The precisions that build float32 layers and change only the graph: what `tfclf pretrain`
# offers (its masked-LM model is built in float32 and saved so).
GRAPH_ONLY = tuple(name for name, policy in POLICIES.items() if policy == "float32")

# Ops the oneDNN pass would otherwise convert because they follow a bf16 matmul.
ELEMENTWISE = ("Add", "AddN", "AddV2", "BiasAdd", "BiasAddGrad", "BiasAddV1", "Erf", "Erfc", "FusedBatchNormV2",
               "FusedBatchNormGradV2", "FusedBatchNormV3", "FusedBatchNormGradV3", "_FusedBatchNormEx", "Mean",
               "Mul", "Sub", "FloorDiv", "Log", "Log1p", "LogSoftmax", "Prod", "RealDiv", "Reciprocal", "Rsqrt",
               "Sigmoid", "SigmoidGrad", "Softmax", "Softplus", "Sqrt", "Square", "SquaredDifference", "Sum",
               "Tanh", "TanhGrad", "Elu", "EluGrad", "LeakyRelu", "LeakyReluGrad", "Selu", "SeluGrad")
_INFERLIST_REMOVE = "TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE"


def use_matmul_bfloat16(on: bool = True) -> None:
    """Turn the rewrite on (or back off) for every tf.function this process runs from now on.

    Grappler options are process-wide (TensorFlow re-optimizes already traced functions when
    they change), so this cannot be scoped to one model; tfclf calls it only for runs that ask
    for it. The pass reads the op lists from the environment each time it runs.
    """
    import tensorflow as tf

    if on:
        os.environ[_INFERLIST_REMOVE] = ",".join(ELEMENTWISE)
    tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": on})


def matmul_bfloat16_on() -> bool:
    import tensorflow as tf

    return bool(tf.config.optimizer.get_experimental_options().get("auto_mixed_precision_onednn_bfloat16"))


def cpu_has_bfloat16() -> bool:
    """AVX512-BF16 or AMX: the CPUs with bf16 matmul instructions.

    Elsewhere the rewrite is no use: on AVX2 oneDNN has no bf16 kernels and the graph stays
    float32; on AVX-512 without BF16 it emulates them, 1.8x slower than float32 (a 256x384x1536
    matmul, 9.6 ms against 5.2 ms on an Intel Xeon Cascade Lake)."""
    return cpu.has_bfloat16_matmuls()


def require(name: str) -> None:
    """Stop before training when `name` asks for bf16 matmuls this CPU cannot run fast.

    Checked at the boundary (fit, pretrain, the CLI), not when a run folder loads: a run trained
    with bf16 matmuls elsewhere still loads here, and predicts in float32."""
    if name == "matmul_bfloat16" and not cpu_has_bfloat16():
        from tfclf.errors import TfclfError

        raise TfclfError("--precision matmul_bfloat16 needs a CPU with AVX512-BF16 or AMX, and this one has "
                         "neither (oneDNN would run float32 or slow emulated bf16): use --precision auto or float32")


# What `tfclf predict`, `evaluate` and `explain` (and TextClassifier.load) may ask for at
# prediction time: the precisions that change the graph only, not the layers the run was built in.
FOR_PREDICTION = ("auto", "float32", "matmul_bfloat16")

# What `tfclf export --precision` writes: bfloat16 puts the encoder's matmul casts in the graph.
EXPORT = ("float32", "bfloat16")


def for_prediction(name: str, task: str) -> str:
    """Switch bf16 matmuls on or off for the predictions of a `task` model built for `name`, and
    return the precision predictions run in: matmul_bfloat16 where the CPU has bf16 matmuls and
    either it was asked for, or `auto` chose it for a single-label task; float32 (or the run's
    Keras policy) elsewhere.

    Why not multi-label under `auto`: bf16 rounds each matmul's output to 8 bits of mantissa,
    and a multi-label text changes its label set when any of its labels crosses its threshold.
    On GoEmotions dev (28 labels, tuned thresholds) 93 of 5,426 label sets changed (98.3 %
    identical, under the 99.5 % asked); on TREC-6 and BBC News every label stayed
    (docs/BENCHMARKS.md, "bf16 inference").

    Process-wide, as the rewrite is: the last model loaded or built decides for every model of
    the process (one per `tfclf` command)."""
    found = resolve(name)
    on = found == "matmul_bfloat16" and cpu_has_bfloat16() and (name != "auto" or task != "multilabel")
    if on or matmul_bfloat16_on():
        use_matmul_bfloat16(on)
    return "matmul_bfloat16" if on else ("float32" if found == "matmul_bfloat16" else found)


def resolve(name: str) -> str:
    """The precision `name` trains in: `auto` is matmul_bfloat16 on a bf16 CPU without GPUs, else float32."""
    if name != "auto":
        return name
    import tensorflow as tf

    return "matmul_bfloat16" if cpu_has_bfloat16() and not tf.config.list_physical_devices("GPU") else "float32"


AUTO_BF16_NOTICE = ("this CPU has bfloat16 matmuls: training runs them in bf16, and single-label predictions "
                    "(--precision float32 turns this off)")


@contextlib.contextmanager
def while_training(name: str):
    """bf16 matmuls inside the block (model.fit) where `name` resolves to them; the state before
    is restored (the model's build switched them on already for its predictions: `for_prediction`).

    Where `auto` chose them, this says so on stderr, once, as training starts: every check on
    the input and the settings has passed by then, so the notice never comes before an error."""
    if resolve(name) != "matmul_bfloat16":
        yield
        return
    if name == "auto":
        notice(AUTO_BF16_NOTICE)
    before = matmul_bfloat16_on()
    use_matmul_bfloat16(True)
    try:
        yield
    finally:
        use_matmul_bfloat16(before)
