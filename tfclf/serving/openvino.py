"""OpenVINO as an inference engine beside TensorFlow: the classifier's encoder and head, converted
from a SavedModel of its token-ids signature and compiled for this CPU, predicting what the
TensorFlow model predicts (tests/test_openvino.py: float32 within 1e-5).

A run loaded from its folder keeps the converted model in RUN/openvino/RUN_ID-PRECISION/, written
once by the first load (a conversion takes MiniLM 12 s); a run that replaces it takes its folder,
cache and all, with it. Only the forward pass moves: tokenization stays tfclf's in-graph tokenizer, and training,
explanations (gradients) and pretraining stay TensorFlow. The precision is the model's own, as
runtime/precision.py chose it: `matmul_bfloat16` compiles with OpenVINO's bf16 inference hint
(which it honours on CPUs with AVX512-BF16 or AMX, and ignores elsewhere), float32 with f32.

    pip install 'tfclf[openvino]'
    clf = TextClassifier.load("runs/news", engine="openvino")
"""
from __future__ import annotations

import importlib.util
import tempfile
import threading
from pathlib import Path

import numpy as np

from tfclf.console import warn
from tfclf.errors import TfclfError
from tfclf.storage.atomic import replace_folder

ENGINES = ("auto", "tensorflow", "openvino")
HINTS = {"float32": "f32", "matmul_bfloat16": "bf16", "int8": "f32"}  # a model's precision -> OpenVINO's hint
INT8 = "int8"  # OpenVINO's own: post-training quantization (NNCF), calibrated on texts the caller gives


def installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def choose(engine: str, two_stages: bool) -> str:
    """The engine a prediction runs on: `auto` takes OpenVINO where it is installed and the run
    is one it converts (not a two-stage run, whose stage 2 reads chunk embeddings)."""
    if engine not in ENGINES:
        raise TfclfError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "openvino":
        if not installed():
            raise TfclfError("engine 'openvino' needs OpenVINO: pip install 'tfclf[openvino]'")
        if two_stages:
            raise TfclfError("engine 'openvino' runs one-stage runs; a hierarchical run predicts in TensorFlow "
                             "(engine 'tensorflow' or 'auto')")
    if engine == "auto":
        return "openvino" if installed() and not two_stages else "tensorflow"
    return engine


class OpenVINOModel:
    """A Keras classifier compiled by OpenVINO: called on a batch of token ids (a dict by input
    name), it returns the logits as numpy; `input_names` as the Keras model's. Thread-safe: each
    call takes its own infer request."""

    def __init__(self, model, precision: str, cache: Path | None = None, calibration: list[dict] | None = None):
        import openvino as ov

        if precision not in HINTS:
            raise TfclfError(f"engine 'openvino' predicts in {', '.join(HINTS)}, not {precision!r}")
        self.input_names, self.precision = list(model.input_names), precision
        found = converted(model, cache, lambda ov_model: quantized(ov_model, calibration) if precision == INT8
                          else ov_model)
        self._compiled = ov.Core().compile_model(found, "CPU", {"INFERENCE_PRECISION_HINT": HINTS[precision]})
        self._lock = threading.Lock()

    def __call__(self, inputs: dict) -> np.ndarray:
        with self._lock:  # creating a request is cheap; the compiled model is shared
            request = self._compiled.create_infer_request()
        found = request.infer({name: np.asarray(inputs[name], np.int32) for name in self.input_names})
        return np.asarray(next(iter(found.values())), np.float32)


def converted(model, cache: Path | None, then=lambda ov_model: ov_model):
    """`model` converted (and `then` applied: the int8 quantization), read from `cache` (a folder)
    when an earlier load wrote it there, else made now and written there whole
    (storage.atomic.replace_folder: a reader never finds half of one). The caller keys the folder
    by what the model is (runs.load: run id, precision, calibration texts)."""
    import openvino as ov

    if cache is not None and (cache / "model.xml").is_file():
        return ov.Core().read_model(str(cache / "model.xml"))
    found = then(convert(model))
    if cache is not None:
        try:
            replace_folder(cache, lambda folder: ov.save_model(found, str(folder / "model.xml"), compress_to_fp16=False))
        except OSError as err:  # a read-only run folder: predict all the same, converting each time
            warn(f"engine 'openvino': could not cache the converted model in {cache} ({err.strerror or err})")
    return found


def quantized(ov_model, calibration: list[dict] | None):
    """int8 weights and activations where NNCF's transformer preset puts them, the ranges set on
    `calibration` (batches of token ids: the run's own kind of text, as many as given)."""
    if not calibration:
        raise TfclfError("precision 'int8' is calibrated on texts like the ones it will read: pass calibration=[...] "
                         "(a few hundred of the validation texts)")
    if importlib.util.find_spec("nncf") is None:
        raise TfclfError("precision 'int8' needs NNCF: pip install 'tfclf[openvino]'")
    import nncf

    return nncf.quantize(ov_model, nncf.Dataset(calibration), model_type=nncf.ModelType.TRANSFORMER,
                         subset_size=len(calibration))


def convert(model, outputs=lambda logits: {"logits": logits}):
    """`model` (token ids -> logits, then `outputs` of them) as an openvino.Model: saved as a
    SavedModel of that one signature in a temporary folder, which OpenVINO's TensorFlow frontend
    reads."""
    import openvino as ov
    import tensorflow as tf

    spec = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in model.input_names}
    forward = tf.function(lambda inputs: outputs(model(inputs, training=False)), input_signature=[spec],
                          autograph=False)
    module = tf.Module()
    module.model, module.forward = model, forward  # tracked: the SavedModel keeps the variables
    from tfclf.serving.export import without_keras_traces  # the frontend reads the signature alone

    with tempfile.TemporaryDirectory(prefix="tfclf-openvino-") as folder:
        with without_keras_traces():
            # the function, not a concrete one traced out here: that would be traced again inside (export.py)
            tf.saved_model.save(module, folder, signatures={"serving_default": forward})
        return ov.convert_model(folder)
