"""BERT and DistilBERT: one encoder (they differ in token types and in the names of their
weights and config fields, not in their arithmetic), WordPiece, [CLS] a [SEP] b [SEP]."""
from __future__ import annotations

from tfclf.models.families.base import EncoderConfig, Family, bert_layout_json


def _bert(raw: dict) -> EncoderConfig:
    return EncoderConfig("bert", raw["vocab_size"], raw["hidden_size"], raw["num_hidden_layers"],
                         raw["num_attention_heads"], raw["intermediate_size"], raw.get("max_position_embeddings", 512),
                         raw.get("type_vocab_size", 2), raw.get("hidden_act", "gelu"), raw.get("hidden_dropout_prob", 0.1),
                         raw.get("attention_probs_dropout_prob", 0.1), raw.get("layer_norm_eps", 1e-12), raw,
                         pad_token_id=raw.get("pad_token_id", 0))


def _distilbert(raw: dict) -> EncoderConfig:
    return EncoderConfig("distilbert", raw["vocab_size"], raw["dim"], raw["n_layers"], raw["n_heads"],
                         raw["hidden_dim"], raw.get("max_position_embeddings", 512), 0, raw.get("activation", "gelu"),
                         raw.get("dropout", 0.1), raw.get("attention_dropout", 0.1), 1e-12, raw,
                         pad_token_id=raw.get("pad_token_id", 0))


def _bert_json(c: EncoderConfig) -> dict:
    return bert_layout_json(c, "bert", "BertForMaskedLM")


def _distilbert_json(c: EncoderConfig) -> dict:
    return {"model_type": "distilbert", "architectures": ["DistilBertForMaskedLM"], "vocab_size": c.vocab_size,
            "dim": c.hidden_size, "n_layers": c.num_layers, "n_heads": c.num_heads, "hidden_dim": c.intermediate_size,
            "max_position_embeddings": c.max_positions, "activation": c.activation, "dropout": c.dropout,
            "attention_dropout": c.attention_dropout, "sinusoidal_pos_embds": False, "pad_token_id": c.pad_token_id}


_COMMON = dict(encoder="tfclf.models.families.bert.encoder:BertEncoder", weights="tfclf.models.families.bert.weights",
               pairs="bert")
BERT = Family("bert", _bert, _bert_json, prefix="bert.", mlm_architecture="BertForMaskedLM",
              classifier_architecture="BertForSequenceClassification", tokenizer_class="BertTokenizer", **_COMMON)
DISTILBERT = Family("distilbert", _distilbert, _distilbert_json, prefix="distilbert.",
                    mlm_architecture="DistilBertForMaskedLM",
                    classifier_architecture="DistilBertForSequenceClassification",
                    tokenizer_class="DistilBertTokenizer", **_COMMON)
FAMILIES = (BERT, DISTILBERT)
