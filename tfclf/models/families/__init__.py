"""Encoder families, one folder each, and the one registry keyed by config.json's `model_type`.

A family folder holds what tfclf knows of one architecture: reading its config.json
(`__init__.py`, TensorFlow-free), its encoder layers (`encoder.py`, built from models/layers.py),
and the Hugging Face names of its weights (`weights.py`). Everything above models/ asks a
checkpoint's `EncoderConfig.family` instead of testing the model type.
docs/ARCHITECTURE.md, "Adding an encoder family", says how to add one.
"""
from __future__ import annotations

import json
from pathlib import Path

from tfclf.errors import TfclfError
from tfclf.models.families import bert, electra, mpnet, roberta
from tfclf.models.families.base import REGISTRY, EncoderConfig, Family, checked

FAMILIES: dict[str, Family] = REGISTRY
FAMILIES.update({f.model_type: f for f in (*bert.FAMILIES, *mpnet.FAMILIES, *roberta.FAMILIES, *electra.FAMILIES)})


def family(model_type: str) -> Family:
    found = FAMILIES.get(model_type)
    if found is None:
        raise TfclfError(f"model_type {model_type!r} is not supported; tfclf fine-tunes {', '.join(FAMILIES)}")
    return found


def read_config(raw: dict, source: str = "config.json") -> EncoderConfig:
    """config.json (as a dict) of any family, checked."""
    kind = raw.get("model_type")
    if not isinstance(kind, str) or kind not in FAMILIES:
        raise TfclfError(f"{source}: model_type {kind!r} is not supported; tfclf fine-tunes {', '.join(FAMILIES)}")
    try:
        return checked(FAMILIES[kind].read(raw), source)
    except KeyError as err:
        raise TfclfError(f"{source}: no {err.args[0]!r}, which a {kind} config.json has") from None


def config_of_folder(path: Path) -> EncoderConfig:
    file = Path(path) / "config.json"
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TfclfError(f"{file}: not a readable config.json ({err})") from None
    if not isinstance(raw, dict):
        raise TfclfError(f"{file}: not a readable config.json (a JSON object expected)")
    return read_config(raw, str(file))


__all__ = ["EncoderConfig", "FAMILIES", "Family", "config_of_folder", "family", "read_config"]
