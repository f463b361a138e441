"""What every encoder family gives (TensorFlow-free, so the CLI checks a checkpoint before
TensorFlow loads): its config.json read into an `EncoderConfig`, and a `Family` naming its
encoder, its weights' Hugging Face names, its special tokens and how it packs a sentence pair.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Callable

from tfclf.errors import TfclfError

ACTIVATION_NAMES = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
REGISTRY: dict[str, "Family"] = {}  # model_type -> family: filled by families/__init__.py, the one registry


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """What an encoder needs from a Hugging Face config.json, in one set of names whatever the
    family calls them; `raw` is the file as read, written back as it was."""
    model_type: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int  # rows of the position table
    type_vocab_size: int  # 0 for families without token types
    activation: str = "gelu"
    dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    raw: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)
    position_offset: int = 0  # MPNet and RoBERTa number positions from the padding id + 1
    relative_buckets: int = 0  # MPNet's relative-position buckets (0: none)
    pad_token_id: int = 0
    embedding_size: int = 0  # ELECTRA's embeddings, narrower than its layers and projected (0: hidden_size)

    @property
    def embedding_width(self) -> int:
        return self.embedding_size or self.hidden_size

    @property
    def family(self) -> "Family":
        return REGISTRY[self.model_type]

    @property
    def usable_positions(self) -> int:
        """The longest sequence the position table reads: past it a gather fails on CPU."""
        return self.max_positions - self.position_offset

    def save_pretrained(self, folder: str | Path) -> None:
        """config.json as Hugging Face writes it (the file read, or one made for a new model)."""
        raw = self.raw or self.family.to_hugging_face(self)
        (Path(folder) / "config.json").write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")


@dataclasses.dataclass(frozen=True)
class Family:
    """One encoder family, as tfclf's layers and Hugging Face's files know it.

    `read` maps config.json (a dict) to an EncoderConfig (a KeyError names a missing field);
    `to_hugging_face` writes one for a new model. The TensorFlow parts are named by module, and
    imported only when a model is built: `encoder` ("module:Class", a layers.Encoder) and
    `weights` (a module with `slots(encoder)`, `MLM_HEAD` and `classification_head(...)`)."""
    model_type: str
    read: Callable[[dict], EncoderConfig]
    to_hugging_face: Callable[[EncoderConfig], dict]
    encoder: str
    weights: str
    prefix: str  # of the encoder's weights in a Hugging Face task model ("bert.")
    mlm_architecture: str
    classifier_architecture: str
    tokenizer_class: str
    tokenizer: str = "wordpiece"  # its in-graph tokenizer (text.KINDS): "wordpiece" or "bpe" (byte-level)
    pairs: str = "bert"  # how two texts are packed: "bert" ([CLS] a [SEP] b [SEP], token types 0 and 1) or
    # "roberta" (<s> a </s></s> b </s>, one token type)

    def build(self, config: EncoderConfig, precision: str = "float32", frozen: bool = False):
        """The family's encoder (a layers.Encoder), built, with fresh weights."""
        module, name = self.encoder.split(":")
        return getattr(importlib.import_module(module), name)(config, precision, frozen).build_with()

    def weight_map(self):
        return importlib.import_module(self.weights)


def bert_layout_json(c: EncoderConfig, model_type: str, architecture: str, **extra) -> dict:
    """config.json in BERT's field names, which RoBERTa and ELECTRA use too (each adds its own)."""
    return {"model_type": model_type, "architectures": [architecture], "vocab_size": c.vocab_size,
            "hidden_size": c.hidden_size, "num_hidden_layers": c.num_layers, "num_attention_heads": c.num_heads,
            "intermediate_size": c.intermediate_size, "max_position_embeddings": c.max_positions,
            "type_vocab_size": c.type_vocab_size, "hidden_act": c.activation, "hidden_dropout_prob": c.dropout,
            "attention_probs_dropout_prob": c.attention_dropout, "layer_norm_eps": c.layer_norm_eps,
            "initializer_range": 0.02, "pad_token_id": c.pad_token_id, **extra}


def checked(config: EncoderConfig, source: str) -> EncoderConfig:
    """A config's values that every family's layers need, checked once."""
    if config.activation not in ACTIVATION_NAMES:
        raise TfclfError(f"{source}: activation {config.activation!r} is not supported ({', '.join(ACTIVATION_NAMES)})")
    if config.hidden_size % config.num_heads:
        raise TfclfError(f"{source}: {config.hidden_size} hidden units do not split into {config.num_heads} heads")
    return config
