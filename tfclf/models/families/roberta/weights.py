"""RoBERTa's weights under Hugging Face's PyTorch names (transformers' RobertaModel,
RobertaForMaskedLM, RobertaForSequenceClassification): BERT's layer names, MPNet's heads."""
from __future__ import annotations

from tfclf.models.families.bert.weights import BERT_LAYER
from tfclf.models.families.mpnet.weights import classification_head  # noqa: F401  (the same head: dense, tanh, out_proj)
from tfclf.models.weights import embedding_slots, layer_slots

MLM_HEAD = {"roberta": {"transform": "lm_head.dense", "layer_norm": "lm_head.layer_norm", "bias": "lm_head.bias"}}
HEADS = {"roberta": ("classifier.dense", "tanh", "classifier.out_proj")}


def slots(encoder) -> list:
    found = embedding_slots(encoder.embeddings, "embeddings", token_types=encoder.embeddings.token_type_embeddings)
    for i, layer in enumerate(encoder.layers):
        found += layer_slots(layer, f"encoder.layer.{i}", BERT_LAYER)
    return found
