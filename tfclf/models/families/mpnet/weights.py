"""MPNet's weights under Hugging Face's PyTorch names (transformers' MPNetModel, MPNetForMaskedLM,
MPNetForSequenceClassification)."""
from __future__ import annotations

import numpy as np

from tfclf.models.weights import embedding_slots, layer_slots

LAYER = {"query": "attention.attn.q", "key": "attention.attn.k", "value": "attention.attn.v",
         "attention_output": "attention.attn.o", "attention_layer_norm": "attention.LayerNorm",
         "intermediate": "intermediate.dense", "output": "output.dense", "output_layer_norm": "output.LayerNorm"}
MLM_HEAD = {"mpnet": {"transform": "lm_head.dense", "layer_norm": "lm_head.layer_norm", "bias": "lm_head.bias"}}
HEADS = {"mpnet": ("classifier.dense", "tanh", "classifier.out_proj")}  # as bert/weights.py's
EPS = 1e-4  # the classification head's tanh layer: tanh(eps h) / eps is h to a relative (eps |h|)^2 / 3


def slots(encoder) -> list:
    found = embedding_slots(encoder.embeddings, "embeddings")
    for i, layer in enumerate(encoder.layers):
        found += layer_slots(layer, f"encoder.layer.{i}", LAYER)
    return found + [(encoder.relative_attention_bias, ["encoder.relative_attention_bias.weight"], "copy")]


def classification_head(encoder, kernel: np.ndarray, bias: np.ndarray) -> dict[str, np.ndarray]:
    """MPNetForSequenceClassification: logits = W' tanh(P h + p) + b' on the first token's state.
    P = eps * I, p = 0 and W' = W / eps give tfclf's W h + b back (as BERT's pooler does)."""
    hidden = kernel.shape[0]
    return {"classifier.dense.weight": np.eye(hidden, dtype=np.float32) * EPS,
            "classifier.dense.bias": np.zeros(hidden, np.float32),
            "classifier.out_proj.weight": (kernel / EPS).T, "classifier.out_proj.bias": bias}
