"""Hugging Face weight files in and out of tfclf's encoders, read from the files themselves:

- model.safetensors with the safetensors package (numpy arrays, no torch), float16 and bfloat16
  read as float32;
- tf_model.h5 with h5py, in the layout of Hugging Face's TensorFlow classes (kernels [in, out],
  LayerNorm gamma and beta, "layer_._3");
- pytorch_model.bin through torch, where torch is installed (one line otherwise).

Every file's names are brought to Hugging Face's PyTorch names without the model prefix
(`bert.`, `mpnet.`): "encoder.layer.3.attention.self.query.weight", [out, in]. Each family's
weights.py lists its slots (variable, names, how they map) with the helpers here;
`to_encoder` puts a checkpoint's tensors into them (the query, key and value fused into one
kernel) and `to_hugging_face` gives them back, for model.safetensors files that transformers loads.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np

from tfclf.console import warn
from tfclf.errors import TfclfError, option

FILES = ("model.safetensors", "tf_model.h5", "pytorch_model.bin")
# weights of heads and buffers a backbone does not use: ignored without a word
_NOT_OURS = re.compile(r"^(pooler\.|cls\.|classifier\.|pre_classifier\.|qa_outputs\.|vocab_|lm_head\.|embeddings\.position_ids"
                       r"|generator_predictions\.|generator_lm_head\.|discriminator_predictions\.)")  # (ELECTRA's heads)

def weights_file(path: Path) -> Path:
    """The weights file of a checkpoint folder, safetensors first; one line when there is none,
    or when only PyTorch's is there and torch is not."""
    for name in FILES:
        if (path / name).is_file():
            if name == "pytorch_model.bin" and importlib.util.find_spec("torch") is None:
                raise TfclfError(f"{option('model')} {path}: only PyTorch weights (pytorch_model.bin), which need torch to "
                                 "read: pip install torch (the CPU build is enough), or save the checkpoint as "
                                 "safetensors")
            return path / name
    raise TfclfError(f"{option('model')} {path}: no tf_model.h5, model.safetensors or pytorch_model.bin weights")


def read(file: Path) -> dict[str, np.ndarray]:
    """A weights file's tensors by Hugging Face PyTorch name, without the model prefix."""
    try:
        if file.suffix == ".safetensors":
            found = _read_safetensors(file)
        elif file.suffix == ".h5":
            found = _read_h5(file)
        else:
            import torch

            found = {k: v.float().numpy() if v.is_floating_point() else v.numpy()
                     for k, v in torch.load(str(file), map_location="cpu", weights_only=True).items()}
    except TfclfError:
        raise
    except Exception as err:  # a damaged or foreign file: its reader's words, on one line
        raise TfclfError(f"{file}: the weights could not be read ({' '.join(str(err).split())[:200]})") from None
    return {_unprefixed(name.replace(".gamma", ".weight").replace(".beta", ".bias")): value
            for name, value in found.items()}


def _read_safetensors(file: Path) -> dict[str, np.ndarray]:
    """A safetensors file's tensors as numpy; bfloat16 ones (what many recent checkpoints ship, and
    numpy has no type for) as float32, exactly: a bf16 number is a float32's upper 16 bits."""
    import json
    import struct

    from safetensors.numpy import load_file

    with open(file, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        if not any(isinstance(v, dict) and v.get("dtype") == "BF16" for v in header.values()):
            return load_file(str(file))
        start = 8 + size
        found = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            f.seek(start + begin)
            raw = f.read(end - begin)
            if info["dtype"] == "BF16":
                value = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                value = np.frombuffer(raw, _SAFETENSORS_TYPES[info["dtype"]])
            found[name] = value.reshape(info["shape"]).copy()
    return found


_SAFETENSORS_TYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
                      "U8": "u1", "BOOL": "?"}


def _unprefixed(name: str) -> str:
    from tfclf.models.families import FAMILIES

    for prefix in (*{f.prefix for f in FAMILIES.values()}, "model."):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _read_h5(file: Path) -> dict[str, np.ndarray]:
    """Hugging Face's TensorFlow layout ("<group>/<model scope>/bert/encoder/layer_._0/.../kernel:0")
    in PyTorch names and layout."""
    import h5py

    found: dict[str, np.ndarray] = {}

    def visit(name: str, item) -> None:
        if not isinstance(item, h5py.Dataset):
            return
        parts = name.removesuffix(":0").split("/")[2:]
        parts = [p.replace("mlm___cls", "cls") for p in parts]
        parts = [piece for p in parts for piece in (["layer", p[len("layer_._"):]] if p.startswith("layer_._") else [p])]
        value = np.asarray(item)
        last = parts[-1]
        if last == "kernel":
            value, last = value.T, "weight"
        parts[-1] = {"gamma": "weight", "beta": "bias", "embeddings": "weight"}.get(last, last)
        found[".".join(parts)] = value

    with h5py.File(file, "r") as f:
        f.visititems(visit)
    return found


def embedding_slots(embeddings, prefix: str, token_types=None) -> list:
    """Word and position embeddings and their LayerNorm (and token types) under `prefix`."""
    found = [(embeddings.word_embeddings, [f"{prefix}.word_embeddings.weight"], "copy"),
             (embeddings.position_embeddings, [f"{prefix}.position_embeddings.weight"], "copy"),
             (embeddings.layer_norm.gamma, [f"{prefix}.LayerNorm.weight"], "copy"),
             (embeddings.layer_norm.beta, [f"{prefix}.LayerNorm.bias"], "copy")]
    if token_types is not None:
        found.append((token_types, [f"{prefix}.token_type_embeddings.weight"], "copy"))
    return found


def layer_slots(layer, prefix: str, names: dict[str, str]) -> list:
    """A layers.TransformerLayer's slots: (variable, its Hugging Face names, how they map): "copy",
    "transpose" ([out, in] to a Keras kernel's [in, out]), or "fused" (query, key and value side by
    side in one). `names` gives each part's name in the family's files."""
    name = lambda slot, part: f"{prefix}.{names[slot]}.{part}"  # noqa: E731
    found = [(layer.qkv.kernel, [name(s, "weight") for s in ("query", "key", "value")], "fused"),
             (layer.qkv.bias, [name(s, "bias") for s in ("query", "key", "value")], "fused")]
    for slot, dense in (("attention_output", layer.attention_output), ("intermediate", layer.intermediate),
                        ("output", layer.output_dense)):
        found += [(dense.kernel, [name(slot, "weight")], "transpose"), (dense.bias, [name(slot, "bias")], "copy")]
    for slot, norm in (("attention_layer_norm", layer.attention_layer_norm),
                       ("output_layer_norm", layer.output_layer_norm)):
        found += [(norm.gamma, [name(slot, "weight")], "copy"), (norm.beta, [name(slot, "bias")], "copy")]
    return found


def _slots(encoder) -> list:
    return encoder.config.family.weight_map().slots(encoder)


def to_encoder(encoder, tensors: dict[str, np.ndarray], source: str) -> None:
    """Put `tensors` into `encoder` (built): each weight shape-checked; weights missing are one
    line (TfclfError), weights of nothing tfclf knows one warning."""
    slots = _slots(encoder)
    missing = [n for _, names, _ in slots for n in names if n not in tensors]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise TfclfError(f"{source}: not a {encoder.config.model_type} checkpoint of its config.json: no {shown}")
    for variable, names, how in slots:
        parts = [tensors[n] for n in names]
        value = np.concatenate([p.T if p.ndim == 2 else p for p in parts], axis=-1) if how == "fused" else \
            parts[0].T if how == "transpose" else parts[0]
        _assign(variable, value, names[0], source)
    used = {n for _, names, _ in slots for n in names}
    unknown = sorted(n for n in tensors if n not in used and not _NOT_OURS.match(n))
    if unknown:
        warn(f"{source}: {len(unknown)} weights tfclf does not use ({', '.join(unknown[:4])}"
             f"{', ...' if len(unknown) > 4 else ''})")


def _assign(variable, value: np.ndarray, name: str, source: str) -> None:
    if tuple(variable.shape) != value.shape:
        raise TfclfError(f"{source}: {name} has shape {value.shape} where its config.json makes "
                         f"{tuple(variable.shape)}")
    variable.assign(value.astype(variable.dtype.as_numpy_dtype))


def _mlm_names(config) -> dict[str, str] | None:
    return config.family.weight_map().MLM_HEAD.get(config.model_type)


def to_mlm_head(head, config, tensors: dict[str, np.ndarray]) -> bool:
    """The masked-LM head's weights where the checkpoint has them; False where it has none (a
    sentence encoder such as all-MiniLM-L6-v2): the head starts untrained."""
    names = _mlm_names(config)
    if names is None or f"{names['transform']}.weight" not in tensors:
        return False
    transform, norm = names["transform"], names["layer_norm"]
    _assign(head.transform.kernel, tensors[f"{transform}.weight"].T, "transform", "checkpoint")
    _assign(head.transform.bias, tensors[f"{transform}.bias"], "transform bias", "checkpoint")
    _assign(head.layer_norm.gamma, tensors[f"{norm}.weight"], "layer norm", "checkpoint")
    _assign(head.layer_norm.beta, tensors[f"{norm}.bias"], "layer norm bias", "checkpoint")
    _assign(head.bias, tensors[names["bias"]], "output bias", "checkpoint")
    return True


def to_hugging_face(encoder, head=None) -> dict[str, np.ndarray]:
    """The encoder's (and a masked-LM head's) weights under Hugging Face's PyTorch names and
    layout, with the family's model prefix: a model.safetensors transformers loads."""
    model = encoder.config.family.prefix
    found = {}
    for variable, names, how in _slots(encoder):
        value = variable.numpy()
        parts = np.split(value, len(names), axis=-1) if how == "fused" else [value.T if how == "transpose" else value]
        for name, part in zip(names, parts):
            found[model + name] = part.T if part.ndim == 2 and how == "fused" else part
    if head is not None:
        names = _mlm_names(encoder.config)
        transform, norm = names["transform"], names["layer_norm"]
        found.update({f"{transform}.weight": head.transform.kernel.numpy().T,
                      f"{transform}.bias": head.transform.bias.numpy(),
                      f"{norm}.weight": head.layer_norm.gamma.numpy(), f"{norm}.bias": head.layer_norm.beta.numpy(),
                      names["bias"]: head.bias.numpy()})
        # the decoder is tied to the word embeddings (and its bias to the head's): transformers 5
        # saves neither, and ties them when it loads
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in found.items()}


def read_head(config, tensors: dict[str, np.ndarray]) -> tuple | None:
    """A checkpoint's own classification head, as (activation, hidden kernel, hidden bias, kernel,
    bias) in Keras's [in, out] layout, or None when its weights have none."""
    hidden, activation, out = config.family.weight_map().HEADS[config.model_type]
    names = [_unprefixed(f"{layer}.{part}") for layer in (hidden, out) for part in ("weight", "bias")]
    if not all(name in tensors for name in names):
        return None
    w1, b1, w2, b2 = (tensors[name] for name in names)
    return activation, w1.T, b1, w2.T, b2


def head_tensors(config, hidden_kernel, hidden_bias, kernel, bias) -> dict[str, np.ndarray]:
    """The inverse: a head's weights under the names transformers loads them by."""
    hidden, _, out = config.family.weight_map().HEADS[config.model_type]
    return {f"{hidden}.weight": hidden_kernel.T, f"{hidden}.bias": hidden_bias, f"{out}.weight": kernel.T,
            f"{out}.bias": bias}


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    # tied weights share memory: each name gets its own copy, as safetensors requires
    save_file({k: np.array(v, copy=True) for k, v in tensors.items()}, str(path), metadata={"format": "pt"})
