"""Fine-tuning techniques of Sun et al. (2019): layer-wise learning rates, layer pooling, class weights."""
import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import signal_texts
from tfclf import TextClassifier
from tfclf.models import backbones
from tfclf.training import optimization
from tfclf.models.heads import build_classifier
from tfclf.tasks import WeightedCrossEntropy, balanced_weights


def expected_factor(name: str, layers: int, decay: float, head: float) -> float:
    found = re.search(r"/layer_(\d+)/", name)  # bert/layer_1/qkv/kernel:0 (tfclf/models/layers.py)
    if found:
        return decay ** (layers - 1 - int(found.group(1)))
    return decay ** layers if "/embeddings/" in name else head


@pytest.mark.parametrize("checkpoint", ["tiny_bert_two_layers", "tiny_distilbert_two_layers"])
def test_layer_decay_gives_each_variable_its_learning_rate(checkpoint, request):
    """One AdamW step moves each variable by about its learning rate (Adam's first step is
    lr·sign(g)); read back from the weights, every variable's rate is lr·ξ^(L-l), or the head's."""
    path = request.getfixturevalue(checkpoint)
    config = backbones.backbone_config(path)
    layers = config.num_layers
    model = build_classifier(backbones.build_backbone(config, path), 3, dropout=0.0)
    lr, decay, head_lr = 1e-3, 0.5, 1e-2
    optimizer = optimization.make_optimizer(lr, total_steps=100, warmup_fraction=0.0, weight_decay=0.0,
                                        multiplier=optimization.layerwise_multiplier(layers, decay, head_lr / lr,
                                                                                     config.model_type))
    optimizer.epsilon = 1e-12  # so that Adam's first step is lr·sign(g) even for small gradients
    ids = tf.constant([[2, 40, 41, 42, 3], [2, 50, 51, 3, 0]], tf.int32)
    inputs = {"input_ids": ids, "attention_mask": tf.cast(ids > 0, tf.int32)}
    before = [v.numpy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)([0, 2], model(inputs, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    rates = {v.name: optimizer.learning_rate_of(v) for v in model.trainable_variables}
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    seen = set()
    for v, old, g in zip(model.trainable_variables, before, grads):
        g = tf.convert_to_tensor(g).numpy()
        if np.abs(g).max() < 1e-4:  # no gradient to speak of (unused embedding rows only, etc.)
            continue
        moved = np.abs(v.numpy() - old).max()
        factor = expected_factor(v.name, layers, decay, head_lr / lr)
        assert rates[v.name] == pytest.approx(lr * factor), v.name
        assert moved == pytest.approx(lr * factor, rel=0.02), v.name
        seen.add(factor)
    assert seen >= {decay ** layers, decay ** (layers - 1), 1.0, head_lr / lr}  # embeddings, layers, head


def test_layer_decay_and_head_lr_train_from_the_cli_settings(tiny_bert, tmp_path):
    X, y = signal_texts(400, 0)
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", epochs=4, batch_size=16, max_length=32,
                                         learning_rate=3e-3, layer_decay=0.9, head_learning_rate=1e-2)
    clf.fit(X, y, valid=signal_texts(100, 1)[0], valid_labels=signal_texts(100, 1)[1], verbose=0)
    assert clf.evaluate(*signal_texts(100, 2))["accuracy"] > 0.9
    assert isinstance(clf.model.optimizer, optimization.AdamW)


@pytest.mark.parametrize("pooling,width", [("last4-concat", 3 * 32), ("last4-mean", 32)])
def test_last_four_layer_pooling(tiny_bert_two_layers, pooling, width, tmp_path):
    """The tiny model has 2 layers, so 3 hidden states (embeddings' output included): all are used."""
    X, y = signal_texts(400, 0)
    clf = TextClassifier.from_pretrained(str(tiny_bert_two_layers), task="binary", epochs=4, batch_size=16,
                                         max_length=32, learning_rate=3e-3, pooling=pooling)
    clf.fit(X, y, run_dir=tmp_path / "run", verbose=0)
    assert clf.model.get_layer("pooling").output.shape[-1] == width
    assert clf.evaluate(*signal_texts(100, 2))["accuracy"] > 0.9
    again = TextClassifier.load(tmp_path / "run")
    np.testing.assert_allclose(again.predict_proba(X[:20]), clf.predict_proba(X[:20]), atol=1e-6)


def test_balanced_weights():
    multiclass = np.array([0] * 80 + [1] * 15 + [2] * 5)
    w = balanced_weights("multiclass", multiclass)
    np.testing.assert_allclose(w, [100 / (3 * 80), 100 / (3 * 15), 100 / (3 * 5)])
    labels = np.array([[1, 0], [1, 0], [0, 0], [1, 1]], np.float32)
    np.testing.assert_allclose(balanced_weights("multilabel", labels), [1 / 3, 3.0])
    np.testing.assert_allclose(balanced_weights("binary", np.array([[0.0]] * 3 + [[1.0]])),
                               [4 / 6, 4 / 2])


def test_weighted_cross_entropy_matches_its_definition():
    logits = tf.constant([[0.3, -1.0], [2.0, 0.5]])
    y = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    loss = WeightedCrossEntropy("multilabel", [1.0, 4.0])(y, logits).numpy()
    p = tf.sigmoid(logits).numpy()
    manual = -(y.numpy() * np.log(p) * [1.0, 4.0] + (1 - y.numpy()) * np.log(1 - p)).mean(axis=1).mean()
    assert loss == pytest.approx(manual, rel=1e-5)
    sparse = WeightedCrossEntropy("multiclass", [1.0, 3.0])(tf.constant([1, 0]), logits).numpy()
    ce = -np.log(tf.nn.softmax(logits).numpy()[[0, 1], [1, 0]])
    assert sparse == pytest.approx((ce * [3.0, 1.0]).mean(), rel=1e-5)


def test_class_weight_balanced_lifts_recall_of_a_rare_class(tiny_bert):
    """5 % positives: the balanced loss finds more of them than the plain one, same budget."""
    X, y = signal_texts(2000, 0)
    rare = [t for t, label in zip(X, y) if label == "pos"][:40]
    common = [t for t, label in zip(X, y) if label == "neg"][:760]
    texts, labels = rare + common, ["pos"] * len(rare) + ["neg"] * len(common)
    recall = {}
    for weight in (None, "balanced"):
        clf = TextClassifier.from_pretrained(str(tiny_bert), task="binary", epochs=3, batch_size=16, max_length=32,
                                             learning_rate=3e-3, class_weight=weight)
        clf.fit(texts, labels, verbose=0)
        Xt, yt = signal_texts(300, 5)
        predicted = clf.predict(Xt)
        recall[weight] = np.mean([p == "pos" for p, t in zip(predicted, yt) if t == "pos"])
    assert recall["balanced"] > recall[None] + 0.3, recall
