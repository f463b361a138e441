"""A BERT or DistilBERT config.json as tfclf's encoder (bert.py) reads it: TensorFlow-free, so
that the CLI checks a checkpoint before TensorFlow loads."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tfclf.errors import TfclfError

ACTIVATION_NAMES = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """What the encoder needs from a Hugging Face config.json (BERT's names or DistilBERT's); `raw`
    is the file as read, written back as it was."""
    model_type: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int
    type_vocab_size: int  # 0 for DistilBERT, which has no token types
    activation: str = "gelu"
    dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    raw: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, raw: dict, source: str = "config.json") -> "BertConfig":
        kind = raw.get("model_type")
        try:
            if kind == "bert":
                found = cls(kind, raw["vocab_size"], raw["hidden_size"], raw["num_hidden_layers"],
                            raw["num_attention_heads"], raw["intermediate_size"], raw.get("max_position_embeddings", 512),
                            raw.get("type_vocab_size", 2), raw.get("hidden_act", "gelu"),
                            raw.get("hidden_dropout_prob", 0.1), raw.get("attention_probs_dropout_prob", 0.1),
                            raw.get("layer_norm_eps", 1e-12), raw)
            elif kind == "distilbert":
                found = cls(kind, raw["vocab_size"], raw["dim"], raw["n_layers"], raw["n_heads"], raw["hidden_dim"],
                            raw.get("max_position_embeddings", 512), 0, raw.get("activation", "gelu"),
                            raw.get("dropout", 0.1), raw.get("attention_dropout", 0.1), 1e-12, raw)
            else:
                raise TfclfError(f"{source}: model_type {kind!r} is not supported; tfclf fine-tunes bert, distilbert")
        except KeyError as err:
            raise TfclfError(f"{source}: no {err.args[0]!r}, which a {kind} config.json has") from None
        if found.activation not in ACTIVATION_NAMES:
            raise TfclfError(f"{source}: activation {found.activation!r} is not supported ({', '.join(ACTIVATION_NAMES)})")
        if found.hidden_size % found.num_heads:
            raise TfclfError(f"{source}: {found.hidden_size} hidden units do not split into {found.num_heads} heads")
        return found

    @classmethod
    def from_folder(cls, path: Path) -> "BertConfig":
        file = Path(path) / "config.json"
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise TfclfError(f"{file}: not a readable config.json ({err})") from None
        if not isinstance(raw, dict):
            raise TfclfError(f"{file}: not a readable config.json (a JSON object expected)")
        return cls.from_json(raw, str(file))

    def save_pretrained(self, folder: str | Path) -> None:
        """config.json as Hugging Face writes it (the file read, or one made for a new model)."""
        raw = self.raw or self.to_hugging_face()
        (Path(folder) / "config.json").write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")

    def to_hugging_face(self) -> dict:
        if self.model_type == "distilbert":
            return {"model_type": "distilbert", "architectures": ["DistilBertForMaskedLM"], "vocab_size": self.vocab_size,
                    "dim": self.hidden_size, "n_layers": self.num_layers, "n_heads": self.num_heads,
                    "hidden_dim": self.intermediate_size, "max_position_embeddings": self.max_positions,
                    "activation": self.activation, "dropout": self.dropout, "attention_dropout": self.attention_dropout,
                    "sinusoidal_pos_embds": False, "pad_token_id": 0}
        return {"model_type": "bert", "architectures": ["BertForMaskedLM"], "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size, "num_hidden_layers": self.num_layers,
                "num_attention_heads": self.num_heads, "intermediate_size": self.intermediate_size,
                "max_position_embeddings": self.max_positions, "type_vocab_size": self.type_vocab_size,
                "hidden_act": self.activation, "hidden_dropout_prob": self.dropout,
                "attention_probs_dropout_prob": self.attention_dropout, "layer_norm_eps": self.layer_norm_eps,
                "initializer_range": 0.02, "pad_token_id": 0}
