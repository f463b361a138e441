"""RoBERTa (roberta-base, distilroberta-base: one model type): BERT's encoder with positions numbered
from the padding id + 1 and a single token type, byte-level BPE (vocab.json and merges.txt, or
tokenizer.json), and pairs packed <s> a </s></s> b </s>."""
from __future__ import annotations

from tfclf.models.families.base import EncoderConfig, Family, bert_layout_json


def _read(raw: dict) -> EncoderConfig:
    pad = raw.get("pad_token_id", 1)
    return EncoderConfig("roberta", raw["vocab_size"], raw["hidden_size"], raw["num_hidden_layers"],
                         raw["num_attention_heads"], raw["intermediate_size"], raw.get("max_position_embeddings", 514),
                         raw.get("type_vocab_size", 1), raw.get("hidden_act", "gelu"), raw.get("hidden_dropout_prob", 0.1),
                         raw.get("attention_probs_dropout_prob", 0.1), raw.get("layer_norm_eps", 1e-5), raw,
                         position_offset=pad + 1, pad_token_id=pad)


def _to_json(c: EncoderConfig) -> dict:
    return bert_layout_json(c, "roberta", "RobertaForMaskedLM", bos_token_id=0, eos_token_id=2)


ROBERTA = Family("roberta", _read, _to_json, encoder="tfclf.models.families.roberta.encoder:RobertaEncoder",
                 weights="tfclf.models.families.roberta.weights", prefix="roberta.",
                 mlm_architecture="RobertaForMaskedLM", classifier_architecture="RobertaForSequenceClassification",
                 tokenizer_class="RobertaTokenizer", tokenizer="bpe", pairs="roberta")
FAMILIES = (ROBERTA,)
