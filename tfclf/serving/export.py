"""Export a run to a SavedModel that TensorFlow Serving serves from raw text.

`saved_models/NAME/VERSION/` is the layout TF Serving watches. The version is written into
a temporary folder beside it and renamed into place, so a server never sees half of one.
Tokenization, label names and thresholds live in the graph: the SavedModel needs no other
file and no Python tokenizer.

Signatures:
  serving_default   text: string [batch] (and text_pair: string [batch], a run on sentence pairs)
                    -> probabilities: float [batch, classes]
                       label: string [batch]                  (binary, multi-class)
                       labels: string [batch, classes]        (multi-label: the name where the
                       decisions: int32 [batch, classes]       probability reaches the label's
                                                               threshold, "" elsewhere)
  serve_token_ids   input_ids, attention_mask (token_type_ids for pairs of BERT's kind):
                    int32 [batch, length] -> the same outputs
                    (not for hierarchical runs, whose serving_default chunks each document,
                    encodes the chunks and regroups them inside the graph)
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from tfclf import tasks
from tfclf.console import predicting_bar
from tfclf.data.examples import PAIR_SEP
from tfclf.errors import TfclfError, option
from tfclf.models.heads import SequenceText
from tfclf.runtime import precision as precisions
from tfclf.storage.atomic import replace_folder

# Warm-up requests: short, medium and over-length texts, so the shapes TF Serving meets first
# are compiled before the model takes traffic.
WARMUP_TEXTS = (
    "Great!",
    "The central bank raised interest rates by a quarter point on Thursday.",
    "I loved the first half of the film, but the ending dragged on far too long for my taste.",
    " ".join(["A long document keeps going well past the token budget of the model."] * 60),
)


class ServingModule(tf.Module):
    """The exported object: raw strings -> logits (tokenizer in the graph), and the decision rule."""

    def __init__(self, text_logits, token_model, task: str, classes: Sequence[str], thresholds: np.ndarray,
                 pairs: bool = False):
        super().__init__(name="tfclf_serving")
        self.text_logits = text_logits  # a layer that tokenizes and runs the model (readers.py)
        self.token_model = token_model  # token ids -> logits; None where ids of one sequence mean nothing
        self.task, self.pairs = task, pairs
        self.thresholds = tf.constant(np.asarray(thresholds, np.float32))
        # Variables, so that a client of the SavedModel can read them back as well as the graph use them.
        self.class_names = tf.Variable(list(classes), trainable=False, dtype=tf.string, name="class_names")
        self.task_name = tf.Variable(task, trainable=False, dtype=tf.string, name="task")
        if token_model is not None:  # saved functions are traced even outside the signatures: only then
            self.serve_token_ids = tf.function(self._serve_token_ids, input_signature=[
                tf.TensorSpec([None, None], tf.int32, name=name) for name in token_model.input_names])
        text = tf.TensorSpec([None], tf.string, name="text")
        self.serve_text = tf.function(self._serve_pair, input_signature=[
            text, tf.TensorSpec([None], tf.string, name="text_pair")]) if pairs else \
            tf.function(self._serve_text, input_signature=[text])

    def _serve_text(self, text: tf.Tensor) -> dict:
        return self.outputs(self.text_logits(text))

    def _serve_pair(self, text: tf.Tensor, text_pair: tf.Tensor) -> dict:
        """Two texts a row, joined as data/examples.py joins a sentence pair (PAIR_SEP taken out of
        what a client sent, as clean_text takes it out of a text), for the tokenizer to pack."""
        clean = lambda t: tf.strings.regex_replace(t, PAIR_SEP, "")  # noqa: E731
        return self._serve_text(tf.strings.join([clean(text), clean(text_pair)], separator=PAIR_SEP))

    def _serve_token_ids(self, *tensors: tf.Tensor) -> dict:
        logits = self.token_model(dict(zip(self.token_model.input_names, tensors)), training=False)
        return self.outputs(logits)

    def outputs(self, logits: tf.Tensor) -> dict:
        return tasks.serving_outputs(self.task, logits, self.class_names, self.thresholds)


def next_version(base: Path) -> int:
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and re.fullmatch(r"\d+", p.name)] \
        if base.is_dir() else []
    return max(versions, default=0) + 1


def export(classifier, base: str | Path, version: int | None = None,
           warmup_texts: Sequence[str] = WARMUP_TEXTS, precision: str = "float32") -> Path:
    """Write a trained TextClassifier to `base/VERSION/` atomically and return its path.

    `precision="bfloat16"` exports the model built with bf16 matmuls (casts in the graph,
    models/layers.py): TF Serving runs them with oneDNN's bf16 kernels on CPUs that have AVX512-BF16
    or AMX. Everything else in the graph stays float32. `float32` is float32 whatever the run
    predicts in here."""
    built_in = precisions.for_export(precision)
    classifier.require_trained()
    # bf16 kernels kept in bf16: cast once here, not at every request (and half their size on disk)
    reader, model = classifier.reader, classifier.model.in_precision(built_in, frozen=True)
    module = ServingModule(reader.text_layer(model), reader.token_model(model), classifier.config.task,
                           classifier.labels.classes, classifier.thresholds, classifier.config.pairs)
    return export_module(module, base, version, warmup_texts)


def export_model(tokenizer, model, task: str, classes: Sequence[str], base: str | Path,
                 thresholds: Sequence[float] | None = None, version: int | None = None) -> Path:
    """Export a classifier built and fitted by hand (build_classifier + model.fit, as in a
    notebook): `model` maps token ids and mask to logits; thresholds default to 0.5."""
    outputs = tasks.units(task, len(classes))
    thresholds = np.full(outputs, 0.5) if thresholds is None else np.asarray(thresholds, np.float32)
    return export_module(ServingModule(SequenceText(tokenizer, model), model, task, classes, thresholds), base,
                         version)


def version_folder(base: str | Path, version: int | None = None) -> Path:
    """`base/VERSION`, not there yet: the next integer where no version is given."""
    base = Path(base)
    target = base / str(next_version(base) if version is None else int(version))
    if target.exists():
        raise TfclfError(f"{target} exists already; TF Serving versions are immutable, pick another {option('version')}")
    return target


def export_module(module: ServingModule, base: str | Path, version: int | None = None,
                  warmup_texts: Sequence[str] = WARMUP_TEXTS) -> Path:
    target = version_folder(base, version)
    # The functions, not concrete functions traced here: a trace's cache key includes the save
    # context's variable policy, so one traced outside tf.saved_model.save is traced again inside it.
    signatures = {"serving_default": module.serve_text}
    if module.token_model is not None:
        signatures["serve_token_ids"] = module.serve_token_ids

    def write(folder: Path) -> None:
        with without_keras_traces():
            tf.saved_model.save(module, str(folder), signatures=signatures)
        write_warmup_requests(folder / "assets.extra" / "tf_serving_warmup_requests", warmup_texts,
                              pairs=module.pairs)

    # written under a hidden name, then renamed: TF Serving never sees half a version
    return replace_folder(target, write)


@contextlib.contextmanager
def without_keras_traces():
    """Save only the serving functions, not a trace of every Keras layer's `call` as well.

    tf.saved_model.save traces each tracked Keras layer for Keras's own loader; nothing reads
    those (TF Serving and `tf.saved_model.load` use the signatures), and for a transformer they
    cost most of the export: `tfclf export` of the MiniLM demo took 54 s with them and 30 s
    without, and loading it 8.5 s against 2.2 s (docs/BENCHMARKS.md). OpenVINO's conversion
    (serving/openvino.py) saves without them too."""
    try:
        from tf_keras.src.saving.legacy.saved_model import utils
    except ImportError:  # another Keras layout: save as TensorFlow does by default
        yield
        return
    with utils.keras_option_scope(save_traces=False, in_tf_saved_model_scope=utils.in_tf_saved_model_scope()):
        yield


def write_warmup_requests(path: Path, texts: Sequence[str], model_name: str = "model", pairs: bool = False) -> None:
    """TF Serving's warm-up file: a TFRecord of PredictionLog protos, one per batch of texts (each
    text paired with the next, for a run on sentence pairs)."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch in ([texts[0]], list(texts)):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default"))
            request.inputs["text"].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
            if pairs:
                request.inputs["text_pair"].CopyFrom(tf.make_tensor_proto(batch[1:] + batch[:1], dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def load_saved_model(path: str | Path):
    """Load an exported model without transformers: tensorflow-text only registers the ops."""
    import tensorflow_text  # noqa: F401  (the tokenizer's ops)

    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise TfclfError(f"{path}: no saved_model.pb; pass a version folder such as saved_models/NAME/1")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as err:  # a damaged or foreign file: TensorFlow's own words, on one line
        raise TfclfError(f"{path}: not a loadable SavedModel ({' '.join(str(err).split())[:300]})") from None
    if not all(hasattr(loaded, name) for name in ("task_name", "class_names")) or \
            "serving_default" not in loaded.signatures:
        raise TfclfError(f"{path}: a SavedModel, but not one written by tfclf export (no task and class names)")
    return loaded


def saved_model_predictor(loaded, batch_size: int = 64):
    """texts -> (probabilities, decided label names) through the SavedModel's serving_default: what
    `tfclf predict --saved-model` streams a file through."""
    def predict(texts: Sequence[str]) -> tuple[np.ndarray, list]:
        out = predict_saved_model(loaded, texts, batch_size)
        if "score" in out:  # a regression: the score is the prediction, and there are no probabilities
            return out["score"].reshape(-1, 1), [float(v) for v in out["score"]]
        labels = [[n.decode() for n in row if n] for row in out["labels"]] if "labels" in out \
            else [n.decode() for n in out["label"]]
        return out["probabilities"], labels

    return predict


def predict_saved_model(loaded, texts: Sequence[str], batch_size: int = 64,
                        progress: bool = False) -> dict[str, np.ndarray]:
    """Run the serving_default signature over `texts` in batches; outputs as NumPy arrays. A
    SavedModel of sentence pairs takes (text, pair) tuples, or pairs joined as data/examples.py joins them."""
    serve = loaded.signatures["serving_default"]
    pairs = "text_pair" in serve.structured_input_signature[1]
    parts: dict[str, list] = {}
    for start in predicting_bar(range(0, len(texts), batch_size), show=progress):
        batch = list(texts[start:start + batch_size])
        if pairs:
            split = [t if isinstance(t, (tuple, list)) else t.split(PAIR_SEP, 1) + [""] for t in batch]
            out = serve(text=tf.constant([s[0] for s in split], tf.string),
                        text_pair=tf.constant([s[1] for s in split], tf.string))
        else:
            out = serve(text=tf.constant(batch, tf.string))
        for key, value in out.items():
            parts.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(values) for key, values in parts.items()}
