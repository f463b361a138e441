"""ELECTRA (google/electra-*-discriminator, and the generators): BERT's encoder with embeddings
`embedding_size` wide, projected to the layers' width where that differs; WordPiece, BERT's pairs."""
from __future__ import annotations

from tfclf.models.families.base import EncoderConfig, Family, bert_layout_json


def _read(raw: dict) -> EncoderConfig:
    return EncoderConfig("electra", raw["vocab_size"], raw["hidden_size"], raw["num_hidden_layers"],
                         raw["num_attention_heads"], raw["intermediate_size"], raw.get("max_position_embeddings", 512),
                         raw.get("type_vocab_size", 2), raw.get("hidden_act", "gelu"), raw.get("hidden_dropout_prob", 0.1),
                         raw.get("attention_probs_dropout_prob", 0.1), raw.get("layer_norm_eps", 1e-12), raw,
                         pad_token_id=raw.get("pad_token_id", 0), embedding_size=raw.get("embedding_size", 0))


def _to_json(c: EncoderConfig) -> dict:
    return bert_layout_json(c, "electra", "ElectraForMaskedLM", embedding_size=c.embedding_width)


ELECTRA = Family("electra", _read, _to_json, encoder="tfclf.models.families.electra.encoder:ElectraEncoder",
                 weights="tfclf.models.families.electra.weights", prefix="electra.",
                 mlm_architecture="ElectraForMaskedLM", classifier_architecture="ElectraForSequenceClassification",
                 tokenizer_class="ElectraTokenizer", pairs="bert")
FAMILIES = (ELECTRA,)
