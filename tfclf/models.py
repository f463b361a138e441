"""Keras functional models: backbone -> pooling -> dropout -> Dense head.

The head emits logits; the task's activation (softmax for multi-class, sigmoid for
binary and multi-label) is applied by `probabilities`, and the losses take logits,
which is the numerically stable form of the same thing.
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from tfclf.settings import POOLINGS
from tfclf.tokenization import WordPieceTokenizer

LAYER_POOLINGS = ("last4-concat", "last4-mean")  # from the [CLS] states of the last four layers


class MaskedPooling(keras.layers.Layer):
    """One vector per sequence: the [CLS] state, or the mean or max over real (unmasked) tokens."""

    def __init__(self, mode: str = "cls", **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLINGS or mode in LAYER_POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {mode!r}")
        self.mode = mode

    def call(self, hidden: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        if self.mode == "cls":
            return hidden[:, 0]
        mask = tf.cast(mask, hidden.dtype)[:, :, None]
        if self.mode == "mean":
            return tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return tf.reduce_max(hidden + (mask - 1.0) * 1e4, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


class LastLayersPooling(keras.layers.Layer):
    """The [CLS] states of the last four layers, concatenated or averaged (Sun et al. 2019)."""

    def __init__(self, mode: str = "last4-concat", **kwargs):
        super().__init__(**kwargs)
        if mode not in LAYER_POOLINGS:
            raise ValueError(f"layer pooling must be one of {LAYER_POOLINGS}, got {mode!r}")
        self.mode = mode

    def call(self, hidden_states) -> tf.Tensor:
        cls = [h[:, 0] for h in hidden_states[-4:]]
        return tf.concat(cls, axis=-1) if self.mode == "last4-concat" else tf.add_n(cls) / len(cls)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


def build_classifier(backbone: keras.Model, num_outputs: int, *, dropout: float = 0.1,
                     pooling: str = "cls", name: str = "classifier") -> keras.Model:
    """Token ids and attention mask -> logits, as a plain `tf.keras.Model`."""
    input_ids = keras.Input(shape=(None,), dtype=tf.int32, name="input_ids")
    attention_mask = keras.Input(shape=(None,), dtype=tf.int32, name="attention_mask")
    layers = pooling in LAYER_POOLINGS
    outputs = backbone(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=layers)
    if layers:
        pooled = LastLayersPooling(pooling, name="pooling")(list(outputs.hidden_states))
    else:
        pooled = MaskedPooling(pooling, name="pooling")(outputs.last_hidden_state, attention_mask)
    features = keras.layers.Dropout(dropout, name="head_dropout")(pooled)
    logits = keras.layers.Dense(
        num_outputs, name="logits", dtype="float32",  # float32 logits even under mixed precision
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))(features)
    return keras.Model({"input_ids": input_ids, "attention_mask": attention_mask}, logits, name=name)


class Tokenize(keras.layers.Layer):
    """Raw strings -> {"input_ids", "attention_mask"}, padded to the batch's longest text."""

    def __init__(self, tokenizer: WordPieceTokenizer, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.tokenizer = tokenizer

    def call(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.tokenizer(tf.reshape(texts, [-1]))


def build_text_model(tokenizer: WordPieceTokenizer, classifier: keras.Model,
                     task: str | None = None) -> keras.Model:
    """Raw strings -> logits (or probabilities when `task` is given), tokenizing in the graph.

    This is the model a notebook fits on a tf.data dataset of (string, label) pairs.
    """
    return on_text(lambda text: classifier(Tokenize(tokenizer, name="tokenize")(text)), task)


def on_text(logits_of, task: str | None = None) -> keras.Model:
    """A Keras model on a batch of strings: `logits_of(text)`, then the task's activation if given."""
    text = keras.Input(shape=(), dtype=tf.string, name="text")
    outputs = logits_of(text)
    if task is not None:
        outputs = keras.layers.Activation(activation_for(task), name="probabilities")(outputs)
    return keras.Model(text, outputs, name="text_classifier")


def activation_for(task: str) -> str:
    return "softmax" if task == "multiclass" else "sigmoid"


def probabilities(logits: tf.Tensor, task: str) -> tf.Tensor:
    return tf.nn.softmax(logits) if task == "multiclass" else tf.sigmoid(logits)


def loss_for(task: str, class_weights=None) -> keras.losses.Loss:
    """Cross-entropy on logits: sparse categorical for multi-class, binary otherwise; with
    `class_weights` (see training.balanced_weights), the weighted form."""
    if class_weights is not None:
        return WeightedCrossEntropy(task, class_weights)
    if task == "multiclass":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras.losses.BinaryCrossentropy(from_logits=True)


class WeightedCrossEntropy(keras.losses.Loss):
    """Multi-class: each example weighted by its class's weight. Binary: weights[0] for
    negatives, weights[1] for positives. Multi-label: weights[j] multiplies the positive term
    of label j (a per-label pos_weight), so rare labels are not drowned by their negatives."""

    def __init__(self, task: str, weights, **kwargs):
        super().__init__(name=kwargs.pop("name", "weighted_cross_entropy"), **kwargs)
        self.task = task
        self.weights = [float(w) for w in weights]

    def call(self, y_true: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        weights = tf.constant(self.weights, tf.float32)
        logits = tf.cast(logits, tf.float32)
        if self.task == "multiclass":
            y_true = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y_true, logits)
            return loss * tf.gather(weights, y_true)
        y_true = tf.cast(y_true, tf.float32)
        if self.task == "binary":
            loss = tf.nn.sigmoid_cross_entropy_with_logits(y_true, logits)
            return tf.reduce_mean(loss * (y_true * weights[1] + (1.0 - y_true) * weights[0]), axis=-1)
        return tf.reduce_mean(tf.nn.weighted_cross_entropy_with_logits(y_true, logits, weights), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "task": self.task, "weights": self.weights}
