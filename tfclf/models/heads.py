"""The classifier on a backbone: pooling -> dropout -> Dense head, as a functional Keras model;
and the models on raw strings, the tokenizer in their graph.

The head emits logits; tasks.py turns them into losses, probabilities and decisions.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf
import tf_keras as keras

from tfclf import tasks
from tfclf.config import POOLINGS
from tfclf.runtime import precision as precisions
from tfclf.text.packing import InGraphTokenizer

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


def reads_first_token_only(pool: keras.layers.Layer) -> bool:
    """Whether `pool` reads nothing of the last layer but its first position ([CLS])."""
    return isinstance(pool, LastLayersPooling) or getattr(pool, "mode", None) == "cls"


@dataclasses.dataclass(frozen=True)
class _Recipe:
    """How a classifier was put together, to build it again in another precision (a plain object:
    Keras tracks no part of it, so checkpoints are what they were)."""
    backbone: keras.layers.Layer
    num_outputs: int
    dropout: float
    pooling: str
    name: str
    first_token_only: bool | None
    token_types: bool = False
    head_layer: str | None = None


class BackboneModel(keras.Model):
    """The functional model over a backbone and its pooling (a plain functional keras.Model: its
    layers, weights and saving are Keras's), with no AutoGraph pass over its call."""

    recipe: _Recipe | None = None  # set by build_classifier

    def _should_use_autograph(self) -> bool:
        return False  # a functional model's call has no tensor-dependent control flow to convert

    # Keras's steps branch on Python values only, as the layers do: AutoGraph converting them (and
    # the optimizer and metrics they call) was a second of every fit's tracing (a cProfile of a tiny fit)
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        return super().train_step(data)

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        return super().test_step(data)

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        # A SavedModel serves: the optimizer's state (Adam's two slots a weight) belongs to the
        # training checkpoints, which keep it. Saved along, it tripled every export (XLM-R-base's
        # shape: 3,181 MiB for 1,058 MiB of weights; benchmarks/large_vocab.py).
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "savedmodel":
            children.pop("optimizer", None)
        return children

    @property
    def precision(self) -> str:
        """What this classifier computes in (runtime/precision.py's BUILT), fixed when it was built."""
        return self.recipe.backbone.precision

    @property
    def backbone(self) -> keras.layers.Layer:
        return self.recipe.backbone

    def in_precision(self, precision: str, frozen: bool = False) -> "BackboneModel":
        """This classifier in `precision`: itself where it is built so, else a new model with a copy
        of its weights (float32 in every precision, so they copy as they are). `frozen` (prediction
        only) keeps bf16 matmul kernels in bf16, cast once here (models/layers.py `Dense`)."""
        old = self.recipe.backbone
        if precision == self.precision and old.frozen == (frozen and precisions.matmul_dtype(precision) is not None):
            return self
        backbone = old.config.family.build(old.config, precision, frozen)
        r = self.recipe
        twin = build_classifier(backbone, r.num_outputs, dropout=r.dropout, pooling=r.pooling, name=r.name,
                                first_token_only=r.first_token_only, token_types=r.token_types, head_layer=r.head_layer)
        twin.set_weights(self.get_weights())
        return twin


def build_classifier(backbone: keras.layers.Layer, num_outputs: int, *, dropout: float = 0.1,
                     pooling: str = "cls", name: str = "classifier", first_token_only: bool | None = None,
                     token_types: bool = False, head_layer: str | None = None) -> keras.Model:
    """Token ids and attention mask (and, with `token_types`, a sentence pair's token_type_ids) ->
    logits, as a functional `tf_keras.Model` (a `BackboneModel`) in the backbone's precision.
    `head_layer` (an activation) puts a hidden-wide dense layer before the logits, as the heads of
    Hugging Face's *ForSequenceClassification have it (BERT's pooler, tanh; DistilBERT's, ReLU).
    `first_token_only` (default: where the pooling reads nothing else) computes the backbone's last
    layer for [CLS] alone."""
    policy = precisions.policy(backbone.precision)
    inputs = {name: keras.Input(shape=(None,), dtype=tf.int32, name=name)
              for name in ("input_ids", "attention_mask", *(("token_type_ids",) if token_types else ()))}
    pool = LastLayersPooling(pooling, name="pooling", dtype=policy) if pooling in LAYER_POOLINGS \
        else MaskedPooling(pooling, name="pooling", dtype=policy)
    pooled = _pooled(backbone, pool, inputs["attention_mask"], input_ids=inputs["input_ids"],
                     token_type_ids=inputs.get("token_type_ids"), first_token_only=first_token_only)
    if head_layer:
        pooled = keras.layers.Dense(pooled.shape[-1], activation=head_layer, name="pre_logits", dtype="float32")(pooled)
    features = keras.layers.Dropout(dropout, name="head_dropout", dtype=policy)(pooled)
    logits = keras.layers.Dense(
        num_outputs, name="logits", dtype="float32",  # float32 logits even under mixed precision
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))(features)
    model = BackboneModel(inputs, logits, name=name)
    model.recipe = _Recipe(backbone, num_outputs, dropout, pooling, name, first_token_only, token_types, head_layer)
    return model


def _pooled(backbone, pool: keras.layers.Layer, attention_mask, training=None, first_token_only: bool | None = None,
            **inputs):
    """The backbone on token ids or embeddings (`inputs`), pooled to one vector per sequence. Where
    the pooling reads only [CLS], the backbone's last layer computes that position alone (the
    same numbers, about 5/6 of the layer's matmuls less: docs/BENCHMARKS.md)."""
    layers = isinstance(pool, LastLayersPooling)
    first = reads_first_token_only(pool) if first_token_only is None else first_token_only
    outputs = backbone(attention_mask=attention_mask, output_hidden_states=layers, training=training,
                       first_token_only=first, **inputs)
    return pool(list(outputs["hidden_states"])) if layers else pool(outputs["last_hidden_state"], attention_mask)


def embedding_forward(classifier: keras.Model):
    """(the word-embedding matrix, f(embeddings [batch, length, hidden], mask) -> logits): the
    classifier from its input embeddings on, at inference (no dropout), for attributions."""
    backbone = classifier.backbone
    pool, head = classifier.get_layer("pooling"), classifier.get_layer("logits")

    def forward(embeddings: tf.Tensor, mask: tf.Tensor, types: tf.Tensor | None = None) -> tf.Tensor:
        return head(_pooled(backbone, pool, mask, training=False, input_ids=None, inputs_embeds=embeddings,
                            token_type_ids=types))

    return backbone.word_embeddings, forward


class Tokenize(keras.layers.Layer):
    """Raw strings (or pairs, joined) -> {"input_ids", "attention_mask"(, "token_type_ids")}, padded to
    the batch's longest text."""

    def __init__(self, tokenizer: InGraphTokenizer, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.tokenizer = tokenizer

    def call(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.tokenizer(tf.reshape(texts, [-1]))


class SequenceText(keras.layers.Layer):
    """Raw strings -> logits of a one-stage classifier, tokenized in the graph."""

    def __init__(self, tokenizer, model: keras.Model, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.tokenizer, self.model = tokenizer, model

    def call(self, texts: tf.Tensor) -> tf.Tensor:
        return self.model(self.tokenizer(tf.reshape(texts, [-1])), training=False)


def build_text_model(tokenizer: InGraphTokenizer, classifier: keras.Model,
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
        outputs = keras.layers.Activation(tasks.activation(task), name="probabilities")(outputs)
    return keras.Model(text, outputs, name="text_classifier")
