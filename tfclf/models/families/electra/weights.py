"""ELECTRA's weights under Hugging Face's PyTorch names (transformers' ElectraModel,
ElectraForMaskedLM, ElectraForSequenceClassification): BERT's layer names, the embeddings'
projection, the generator's masked-LM head, and a classification head whose hidden layer is GELU."""
from __future__ import annotations

import numpy as np

from tfclf.errors import TfclfError
from tfclf.models.families.bert.weights import BERT_LAYER
from tfclf.models.weights import embedding_slots, layer_slots

MLM_HEAD = {"electra": {"transform": "generator_predictions.dense", "layer_norm": "generator_predictions.LayerNorm",
                        "bias": "generator_lm_head.bias"}}
HEADS = {"electra": ("classifier.dense", "gelu", "classifier.out_proj")}


def slots(encoder) -> list:
    embeddings = encoder.embeddings
    found = embedding_slots(embeddings, "embeddings", token_types=embeddings.token_type_embeddings)
    if embeddings.project is not None:
        found += [(embeddings.project.kernel, ["embeddings_project.weight"], "transpose"),
                  (embeddings.project.bias, ["embeddings_project.bias"], "copy")]
    for i, layer in enumerate(encoder.layers):
        found += layer_slots(layer, f"encoder.layer.{i}", BERT_LAYER)
    return found


def classification_head(encoder, kernel: np.ndarray, bias: np.ndarray) -> dict[str, np.ndarray]:
    """ElectraForSequenceClassification: logits = W' gelu(P h + p) + b' on the first token's state.
    gelu(x) - gelu(-x) = x exactly (gelu(x) = x Phi(x)), so with P's rows c and C + c set to W's
    column c and its negation, and W' reading +1 and -1 from them, W' gelu(P h) + b = W h + b to
    float32 round-off; the other rows are 0 (gelu(0) = 0). That needs 2 x classes <= hidden."""
    hidden, classes = kernel.shape
    if 2 * classes > hidden:
        raise TfclfError(f"an ELECTRA head of {classes} classes over {hidden} hidden units has no exact Hugging Face "
                         f"form (it needs 2 x classes <= hidden)")
    dense = np.zeros((hidden, hidden), np.float32)
    dense[:classes], dense[classes:2 * classes] = kernel.T, -kernel.T
    out = np.zeros((classes, hidden), np.float32)
    out[:, :classes], out[:, classes:2 * classes] = np.eye(classes), -np.eye(classes)
    return {"classifier.dense.weight": dense, "classifier.dense.bias": np.zeros(hidden, np.float32),
            "classifier.out_proj.weight": out, "classifier.out_proj.bias": bias}
