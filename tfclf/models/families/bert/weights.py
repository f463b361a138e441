"""BERT's and DistilBERT's weights under Hugging Face's PyTorch names (KerasHub's mapping,
keras_hub/src/utils/transformers/convert_bert.py, convert_distilbert.py), and their
sequence-classification heads for the Hugging Face export (serving/hugging_face.py)."""
from __future__ import annotations

import numpy as np

from tfclf.models.weights import embedding_slots, layer_slots

BERT_LAYER = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
              "attention_output": "attention.output.dense", "attention_layer_norm": "attention.output.LayerNorm",
              "intermediate": "intermediate.dense", "output": "output.dense", "output_layer_norm": "output.LayerNorm"}
DISTILBERT_LAYER = {"query": "attention.q_lin", "key": "attention.k_lin", "value": "attention.v_lin",
                    "attention_output": "attention.out_lin", "attention_layer_norm": "sa_layer_norm",
                    "intermediate": "ffn.lin1", "output": "ffn.lin2", "output_layer_norm": "output_layer_norm"}
# the masked-LM head's dense transform, its LayerNorm and its output bias, by model type
MLM_HEAD = {"bert": {"transform": "cls.predictions.transform.dense", "layer_norm": "cls.predictions.transform.LayerNorm",
                     "bias": "cls.predictions.bias"},
            "distilbert": {"transform": "vocab_transform", "layer_norm": "vocab_layer_norm",
                           "bias": "vocab_projector.bias"}}
# a *ForSequenceClassification head by model type: (its hidden layer, activation, its output layer),
# under the full names transformers saves (weights.read_head, weights.head_tensors)
HEADS = {"bert": ("bert.pooler.dense", "tanh", "classifier"), "distilbert": ("pre_classifier", "relu", "classifier")}
EPS = 1e-4  # BERT's pooler: tanh(eps h) / eps is h to a relative (eps |h|)^2 / 3


def slots(encoder) -> list:
    bert = encoder.config.model_type == "bert"
    prefix, names = ("encoder.layer", BERT_LAYER) if bert else ("transformer.layer", DISTILBERT_LAYER)
    found = embedding_slots(encoder.embeddings, "embeddings", token_types=encoder.embeddings.token_type_embeddings)
    for i, layer in enumerate(encoder.layers):
        found += layer_slots(layer, f"{prefix}.{i}", names)
    return found


def classification_head(encoder, kernel: np.ndarray, bias: np.ndarray) -> dict[str, np.ndarray]:
    """The Hugging Face head's weights that give tfclf's logits W h + b from the [CLS] state h.

    BertForSequenceClassification: logits = W' tanh(P h + p) + b'. With P = eps * I and p = 0,
    W' = W / eps gives W h + b back (to under 1e-6 for the |h| a LayerNorm can give).
    DistilBertForSequenceClassification: logits = W' relu(P h + p) + b'. With P = I and p = c above
    anything the last LayerNorm can output (|gamma| sqrt(hidden) + |beta|), relu is the identity,
    and b' = b - W c takes the shift back."""
    hidden = kernel.shape[0]
    if encoder.config.model_type == "bert":
        return {"bert.pooler.dense.weight": np.eye(hidden, dtype=np.float32) * EPS,
                "bert.pooler.dense.bias": np.zeros(hidden, np.float32),
                "classifier.weight": (kernel / EPS).T, "classifier.bias": bias}
    last = encoder.layers[-1].output_layer_norm
    shift = float(np.max(np.abs(last.gamma.numpy())) * np.sqrt(hidden) + np.max(np.abs(last.beta.numpy())) + 1.0)
    return {"pre_classifier.weight": np.eye(hidden, dtype=np.float32),
            "pre_classifier.bias": np.full(hidden, shift, np.float32),
            "classifier.weight": kernel.T, "classifier.bias": bias - shift * kernel.sum(axis=0)}
