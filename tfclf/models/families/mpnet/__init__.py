"""MPNet (all-mpnet-base-v2 and the sentence-transformers MPNets): BERT's post-LayerNorm layers
with a relative-position bias shared by all layers (32 log-spaced buckets), position ids numbered
from the padding id + 1 as RoBERTa's are, no token types; WordPiece with <s> and </s>, and pairs
packed <s> a </s></s> b </s>."""
from __future__ import annotations

from tfclf.models.families.base import EncoderConfig, Family


def _read(raw: dict) -> EncoderConfig:
    pad = raw.get("pad_token_id", 1)
    return EncoderConfig("mpnet", raw["vocab_size"], raw["hidden_size"], raw["num_hidden_layers"],
                         raw["num_attention_heads"], raw["intermediate_size"], raw.get("max_position_embeddings", 514),
                         0, raw.get("hidden_act", "gelu"), raw.get("hidden_dropout_prob", 0.1),
                         raw.get("attention_probs_dropout_prob", 0.1), raw.get("layer_norm_eps", 1e-5), raw,
                         position_offset=pad + 1, relative_buckets=raw.get("relative_attention_num_buckets", 32),
                         pad_token_id=pad)


def _to_json(c: EncoderConfig) -> dict:
    return {"model_type": "mpnet", "architectures": ["MPNetForMaskedLM"], "vocab_size": c.vocab_size,
            "hidden_size": c.hidden_size, "num_hidden_layers": c.num_layers, "num_attention_heads": c.num_heads,
            "intermediate_size": c.intermediate_size, "max_position_embeddings": c.max_positions,
            "hidden_act": c.activation, "hidden_dropout_prob": c.dropout,
            "attention_probs_dropout_prob": c.attention_dropout, "layer_norm_eps": c.layer_norm_eps,
            "relative_attention_num_buckets": c.relative_buckets, "initializer_range": 0.02,
            "pad_token_id": c.pad_token_id, "bos_token_id": 0, "eos_token_id": 2}


MPNET = Family("mpnet", _read, _to_json, encoder="tfclf.models.families.mpnet.encoder:MPNetEncoder",
               weights="tfclf.models.families.mpnet.weights", prefix="mpnet.", mlm_architecture="MPNetForMaskedLM",
               classifier_architecture="MPNetForSequenceClassification", tokenizer_class="MPNetTokenizer",
               pairs="roberta")
FAMILIES = (MPNET,)
