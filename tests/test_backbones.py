"""Finding checkpoints, and building tfclf's own BERT and DistilBERT from their weight files."""
import importlib.util
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfclf.errors import TfclfError
from tfclf.models import backbones, weights


def test_local_folder_and_model_type(tiny_bert, tiny_distilbert):
    assert backbones.resolve_checkpoint(str(tiny_bert)) == tiny_bert
    assert backbones.model_type(tiny_bert) == "bert"
    assert backbones.model_type(tiny_distilbert) == "distilbert"
    encoder = backbones.build_backbone(backbones.backbone_config(tiny_distilbert), tiny_distilbert)
    assert type(encoder).__name__ == "BertEncoder" and encoder.embeddings.token_type_embeddings is None


def test_unsupported_model_type_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "deberta-v2"}))
    with pytest.raises(TfclfError, match="model_type 'deberta-v2' is not supported; tfclf fine-tunes bert, distilbert, "
                                         "mpnet, roberta"):
        backbones.model_type(backbones.resolve_checkpoint(str(tmp_path)))


def test_folder_without_weights(tmp_path, tiny_bert):
    for name in ("config.json", "vocab.txt"):
        (tmp_path / name).write_bytes((tiny_bert / name).read_bytes())
    with pytest.raises(TfclfError, match="no tf_model.h5, model.safetensors or pytorch_model.bin weights"):
        backbones.build_backbone(backbones.backbone_config(tmp_path), tmp_path)


def test_missing_path_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(TfclfError, match="no such checkpoint folder"):
        backbones.resolve_checkpoint(str(tmp_path / "nope"))


def copy_with(tiny, folder, change):
    """The tiny checkpoint with its tensors changed by `change(dict) -> dict`."""
    shutil.copytree(tiny, folder)
    tensors = change(dict(weights.read(tiny / "model.safetensors")))
    weights.write_safetensors(folder / "model.safetensors", tensors)
    return folder


def outputs(folder):
    ids = tf.constant([[2, 40, 41, 42, 3, 0], [2, 50, 51, 52, 53, 3]], tf.int32)
    encoder = backbones.build_backbone(backbones.backbone_config(folder), folder)
    return encoder(input_ids=ids, attention_mask=tf.cast(ids > 0, tf.int32))["last_hidden_state"].numpy()


def test_prefixes_and_both_layer_norm_namings_load_alike(tiny_bert, tmp_path):
    """bert. prefixes (a BertForMaskedLM's file) or none, LayerNorm weight/bias or gamma/beta (older
    checkpoints): the same weights."""
    plain = outputs(tiny_bert)
    renamed = copy_with(tiny_bert, tmp_path / "renamed", lambda t: {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
        for k, v in t.items()})
    unprefixed = copy_with(tiny_bert, tmp_path / "unprefixed", lambda t: {k.removeprefix("bert."): v for k, v in t.items()})
    for folder in (renamed, unprefixed):
        np.testing.assert_array_equal(outputs(folder), plain)


def test_missing_and_unexpected_weights_are_named_in_one_line(tiny_bert, tmp_path, capsys):
    missing = copy_with(tiny_bert, tmp_path / "missing",
                        lambda t: {k: v for k, v in t.items() if "layer.0.attention.self.key" not in k})
    with pytest.raises(TfclfError, match=r"not a bert checkpoint of its config.json: no "
                                         r"encoder\.layer\.0\.attention\.self\.key\.weight, "
                                         r"encoder\.layer\.0\.attention\.self\.key\.bias"):
        outputs(missing)
    extra = copy_with(tiny_bert, tmp_path / "extra", lambda t: {**t, "bert.adapter.weight": np.zeros(3, np.float32),
                                                               "bert.pooler.dense.bias": np.zeros(32, np.float32)})
    outputs(extra)
    assert capsys.readouterr().err.count("\n") == 1  # the pooler is a known head: only the adapter is named
    wrong = copy_with(tiny_bert, tmp_path / "wrong", lambda t: {**t, "embeddings.position_embeddings.weight":
                                                               np.zeros((64, 32), np.float32)})
    with pytest.raises(TfclfError, match=r"position_embeddings.weight has shape \(64, 32\) where its config.json "
                                         r"makes \(512, 32\)"):
        outputs(wrong)


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_heads_on_cls_compute_the_last_layer_for_cls_alone_with_the_same_numbers(kind, tiny_bert, tiny_distilbert):
    from tfclf.models.heads import build_classifier

    path = tiny_bert if kind == "bert" else tiny_distilbert
    backbone = backbones.build_backbone(backbones.backbone_config(path), path)
    ids = np.random.default_rng(0).integers(5, 60, size=(3, 9))
    inputs = {"input_ids": tf.constant(ids, tf.int32),
              "attention_mask": tf.constant([[1] * 9, [1] * 5 + [0] * 4, [1] * 2 + [0] * 7], tf.int32)}
    every = backbone(**inputs)["last_hidden_state"]
    first = backbone(**inputs, first_token_only=True)["last_hidden_state"]
    assert every.shape == (3, 9, 32) and first.shape == (3, 1, 32)
    np.testing.assert_allclose(first[:, 0], every[:, 0], atol=1e-6)
    for pooling, positions in (("cls", 1), ("last4-concat", 1), ("mean", 9)):
        model = build_classifier(backbone, 3, pooling=pooling)
        full = build_classifier(backbone, 3, pooling=pooling, first_token_only=False)  # every position
        full.get_layer("logits").set_weights(model.get_layer("logits").get_weights())
        pool, seen = model.get_layer("pooling"), []
        read = pool.call
        pool.call = lambda hidden, *rest: seen.append((hidden[-1] if isinstance(hidden, list) else hidden).shape[1]) \
            or read(hidden, *rest)
        weights_ = tf.constant(np.random.default_rng(1).normal(size=(3, 3)), tf.float32)
        grads, logits = [], []
        for m in (model, full):
            with tf.GradientTape() as tape:
                logits.append(m(inputs, training=False))
                loss = tf.reduce_sum(logits[-1] * weights_)
            grads.append([tf.convert_to_tensor(g) for g in tape.gradient(loss, m.trainable_variables)])
        assert seen == [positions], (pooling, seen)  # the last layer's output the pooling read
        np.testing.assert_allclose(logits[0].numpy(), logits[1].numpy(), atol=1e-6)
        for fast, slow in zip(*grads):
            np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=1e-5)


def test_pytorch_only_weights_without_torch_are_one_line(tiny_bert, tmp_path, monkeypatch):
    folder = tmp_path / "pt"
    folder.mkdir()
    for name in ("config.json", "vocab.txt"):
        (folder / name).write_bytes((tiny_bert / name).read_bytes())
    (folder / "pytorch_model.bin").write_bytes(b"not read")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(TfclfError, match="only PyTorch weights .* need torch to read: pip install torch"):
        backbones.build_backbone(backbones.backbone_config(folder), folder)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="reading pytorch_model.bin needs torch, which is not a tfclf dependency (pip install "
                           "torch==2.13.0 runs this); the branch without torch is tested above")
def test_pytorch_only_weights_load_through_torch(tiny_bert, tmp_path):
    import torch

    folder = tmp_path / "pt"
    folder.mkdir()
    for name in ("config.json", "vocab.txt"):
        shutil.copy(tiny_bert / name, folder / name)
    torch.save({k: torch.from_numpy(v) for k, v in weights.read(tiny_bert / "model.safetensors").items()},
               folder / "pytorch_model.bin")
    np.testing.assert_array_equal(outputs(folder), outputs(tiny_bert))


def test_bfloat16_and_float16_safetensors_load_as_float32(tiny_bert, tmp_path):
    """Checkpoints shipped in bfloat16 (numpy has no such type) or float16: the weights are the
    stored numbers exactly, as float32. The bf16 file is written by hand, as safetensors lays it out."""
    import struct

    tensors = weights.read(tiny_bert / "model.safetensors")
    upper = {k: (np.ascontiguousarray(v, np.float32).view(np.uint32) >> 16).astype("<u2") for k, v in tensors.items()}
    header, offset = {}, 0
    for name, value in upper.items():
        header[name] = {"dtype": "BF16", "shape": list(value.shape), "data_offsets": [offset, offset + value.nbytes]}
        offset += value.nbytes
    encoded = json.dumps(header).encode()
    folder = tmp_path / "bf16"
    shutil.copytree(tiny_bert, folder)
    with open(folder / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(v.tobytes() for v in upper.values()))
    read = weights.read(folder / "model.safetensors")
    for name, value in upper.items():
        np.testing.assert_array_equal(read[name], (value.astype(np.uint32) << 16).view(np.float32), err_msg=name)
    half = copy_with(tiny_bert, tmp_path / "f16", lambda t: {k: v.astype(np.float16) for k, v in t.items()})
    np.testing.assert_allclose(outputs(half), outputs(folder), atol=0.05)  # two roundings of the same weights
