"""Run folders written before tfclf had its own BERT layers (until commit 0d775f7) kept the
classifier's weights under the variable paths of transformers' TF classes
("layer_with_weights-0/bert/encoder/layer/0/attention/self_attention/query/kernel"). This reads
them into tfclf's layers: each path is renamed to Hugging Face's PyTorch name, and weights.py
puts those where they go, as for a checkpoint. The head (the logits Dense) keeps its path.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfclf.models import weights

_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_RENAMES = (  # transformers' TF attribute paths -> Hugging Face's PyTorch names (BERT and DistilBERT)
    (r"^embeddings/weight$", "embeddings/word_embeddings/weight"),
    (r"^embeddings/embeddings$", "embeddings/position_embeddings/weight"),
    (r"^embeddings/token_type_embeddings$", "embeddings/token_type_embeddings/weight"),
    (r"/self_attention/", "/self/"),
    (r"/dense_output/", "/output/"),
    (r"^encoder/layer/(\d+)/bert_output/", r"encoder/layer/\1/output/"),
)


def is_legacy(prefix: Path) -> bool:
    """Whether the checkpoint at `prefix` holds transformers' variable paths."""
    return any(name.startswith(("layer_with_weights-0/bert/", "layer_with_weights-0/distilbert/"))
               for name, _ in tf.train.list_variables(str(prefix)))


def load(classifier, prefix: Path) -> None:
    """A legacy classifier checkpoint into `classifier` (models/heads.build_classifier's model)."""
    reader = tf.train.load_checkpoint(str(prefix))
    encoder = classifier.backbone
    tensors, head = {}, {}
    for name, _ in tf.train.list_variables(str(prefix)):
        if not name.endswith(_SUFFIX):
            continue
        path = name[:-len(_SUFFIX)]
        if path.startswith("layer_with_weights-1/"):
            head[path.rsplit("/", 1)[1]] = reader.get_tensor(name)
            continue
        found = re.match(r"layer_with_weights-0/(?:bert|distilbert)/(.*)", path)
        if found is None:
            continue  # the optimizer's slots
        hf, value = _hugging_face(found.group(1), reader.get_tensor(name))
        tensors[hf] = value
    weights.to_encoder(encoder, tensors, str(prefix))
    logits = classifier.get_layer("logits")
    logits.kernel.assign(head["kernel"])
    logits.bias.assign(head["bias"])


def _hugging_face(path: str, value: np.ndarray) -> tuple[str, np.ndarray]:
    for pattern, replacement in _RENAMES:
        path = re.sub(pattern, replacement, path)
    parts = path.split("/")
    if parts[-1] == "kernel":
        parts[-1], value = "weight", value.T
    parts[-1] = {"gamma": "weight", "beta": "bias"}.get(parts[-1], parts[-1])
    return ".".join(parts), value
