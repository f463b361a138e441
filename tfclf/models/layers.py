"""The building blocks every encoder family is made of (families/*/encoder.py), tfclf's own
tf-keras layers:

- `Dense`, whose matmul runs in bf16 when the model is built with bf16 matmuls (casts in the
  graph: float32 in, bf16 product, float32 out), its kernel kept in bf16 when `frozen`;
- `TransformerLayer`: self-attention and a feed-forward network, each added to its input and
  layer-normalised after (BERT's order, which DistilBERT, MPNet and RoBERTa share), the query,
  key and value fused into one matmul, an additive attention bias for relative positions, and
  the last layer computed for the first position only when the pooling reads nothing else;
- `Encoder`: embeddings, then the layers, then {"last_hidden_state", "hidden_states"}; a family
  gives its embeddings and, where it has one, its attention bias;
- (masked_lm.py: the masked-LM head and model for further pre-training, on these.)

Each layer takes its precision when it is built (runtime/precision.py): a Keras dtype policy,
passed to every sub-layer, or `matmul_bfloat16`. The attention softmax and the LayerNorms stay
float32. No AutoGraph: the calls branch on Python values only.
"""
from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfclf.runtime import precision as precisions

ACTIVATIONS = {"gelu": lambda x: tf.nn.gelu(x, approximate=False), "gelu_new": lambda x: tf.nn.gelu(x, approximate=True),
               "gelu_pytorch_tanh": lambda x: tf.nn.gelu(x, approximate=True), "relu": tf.nn.relu}


def matmul(a: tf.Tensor, b: tf.Tensor, dtype: str | None, **kwargs) -> tf.Tensor:
    """a @ b, in `dtype` (bfloat16) where given: float32 inputs cast to it and the product cast back,
    so that what follows (GELU, LayerNorm, softmax, the adds) stays float32."""
    if dtype is None or a.dtype != tf.float32:
        return tf.matmul(a, b, **kwargs)
    return tf.cast(tf.matmul(tf.cast(a, dtype), tf.cast(b, dtype), **kwargs), tf.float32)


_LAYER = re.compile(r"/layer_(\d+)/")  # an encoder's variables: bert/layer_3/qkv/kernel:0


def depth(variable: str, encoder: str | None = None) -> int | None:
    """How deep in an encoder named `encoder` a variable (by name) sits: 1..L in layer 1..L, 0 for the
    embeddings and whatever else the encoder holds outside its layers; None outside the encoder.
    Without `encoder`, only a layer's or the embeddings' variables are known to be the encoder's."""
    found = _LAYER.search(variable)
    if encoder is None:
        return int(found.group(1)) + 1 if found else 0 if "/embeddings/" in variable else None
    if not (variable.startswith(f"{encoder}/") or f"/{encoder}/" in variable):
        return None
    return int(found.group(1)) + 1 if found else 0


class Dense(keras.layers.Dense):
    """keras.layers.Dense (the same weights and names) whose matmul runs in `matmul_dtype` when set.

    `frozen` keeps the kernel itself in `matmul_dtype`, for prediction only: cast once, when the
    weights are copied in, rather than at every call; the bf16 SavedModel is built so."""

    def __init__(self, units: int, matmul_dtype: str | None = None, frozen: bool = False, **kwargs):
        super().__init__(units, **kwargs)
        self.matmul_dtype, self.frozen = matmul_dtype, frozen and matmul_dtype is not None

    def build(self, input_shape) -> None:
        if not self.frozen:
            return super().build(input_shape)
        last = int(tf.TensorShape(input_shape)[-1])
        # trainable as a Dense kernel is, so the weights keep their order (set_weights copies by it);
        # a frozen layer is for prediction only
        self.kernel = self.add_weight("kernel", [last, self.units], dtype=self.matmul_dtype,
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight("bias", [self.units], dtype=self.dtype, initializer=self.bias_initializer) \
            if self.use_bias else None
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: last})
        self.built = True

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        if self.matmul_dtype is None or inputs.dtype != tf.float32:
            return super().call(inputs)
        flat = matmul(tf.reshape(inputs, [-1, tf.shape(inputs)[-1]]), self.kernel, self.matmul_dtype)
        out = tf.reshape(flat, tf.concat([tf.shape(inputs)[:-1], [self.units]], 0))
        out = tf.nn.bias_add(out, self.bias) if self.use_bias else out
        return self.activation(out) if self.activation is not None else out

    def get_config(self) -> dict:
        return {**super().get_config(), "matmul_dtype": self.matmul_dtype, "frozen": self.frozen}


def initializer() -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=0.02)


def layer_norm(config, name: str) -> keras.layers.LayerNormalization:
    # float32 under mixed precision: LayerNorm's mean and variance need it
    return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name=name, dtype="float32")


class NoAutoGraph:
    """Keras runs AutoGraph over a subclassed layer's call; these branch on Python values only, and
    converting them is time spent on every trace for nothing."""

    def _should_use_autograph(self) -> bool:
        return False


class TransformerLayer(NoAutoGraph, keras.layers.Layer):
    """Self-attention and a feed-forward network, each added to its input and layer-normalised after."""

    def __init__(self, config, matmul_dtype: str | None = None, frozen: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.size = config.num_heads, config.hidden_size // config.num_heads
        self.matmul_dtype = matmul_dtype
        dense = dict(matmul_dtype=matmul_dtype, frozen=frozen, dtype=self.dtype_policy)
        self.qkv = Dense(3 * config.hidden_size, name="qkv", kernel_initializer=initializer(), **dense)
        self.attention_output = Dense(config.hidden_size, name="attention_output", kernel_initializer=initializer(),
                                      **dense)
        self.attention_layer_norm = layer_norm(config, "attention_layer_norm")
        self.intermediate = Dense(config.intermediate_size, name="intermediate", kernel_initializer=initializer(),
                                  **dense)
        self.output_dense = Dense(config.hidden_size, name="output", kernel_initializer=initializer(), **dense)
        self.output_layer_norm = layer_norm(config, "output_layer_norm")
        self.activation = ACTIVATIONS[config.activation]
        self.dropout = keras.layers.Dropout(config.dropout, dtype=self.dtype_policy)
        self.attention_dropout = keras.layers.Dropout(config.attention_dropout, dtype=self.dtype_policy)

    def call(self, x, bias, first_token_only: bool = False, training=None):
        """x [batch, length, hidden]; bias added to the attention scores: [batch, 1, 1, length] (0 where
        a token is real, very negative at padding), plus [1, heads, length, length] where the family
        has relative positions. With `first_token_only`, the output is [batch, 1, hidden]: the first
        position's, from every position's keys and values."""
        batch = tf.shape(x)[0]
        q, k, v = tf.split(self.qkv(x), 3, axis=-1)
        heads = lambda t: tf.transpose(tf.reshape(t, [batch, -1, self.heads, self.size]), [0, 2, 1, 3])  # noqa: E731
        if first_token_only:
            q, x, bias = q[:, :1], x[:, :1], bias[:, :, :1]
        scores = matmul(heads(q), heads(k), self.matmul_dtype, transpose_b=True)
        scores = tf.cast(scores, tf.float32) / math.sqrt(self.size) + bias
        probs = self.attention_dropout(tf.nn.softmax(scores, axis=-1), training=training)
        context = matmul(tf.cast(probs, v.dtype), heads(v), self.matmul_dtype)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, -1, self.heads * self.size])
        attended = tf.cast(self.dropout(self.attention_output(context), training=training), x.dtype)
        h = self.attention_layer_norm(x + attended)
        out = self.output_dense(self.activation(self.intermediate(h)))
        return self.output_layer_norm(h + tf.cast(self.dropout(out, training=training), h.dtype))


class Embeddings(NoAutoGraph, keras.layers.Layer):
    """Word pieces + positions (+ token types, where the config has them), then LayerNorm and
    dropout: BERT's; a family that numbers its positions otherwise overrides `positions`."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.layer_norm = layer_norm(config, "layer_norm")
        self.dropout = keras.layers.Dropout(config.dropout, dtype=self.dtype_policy)

    def build(self, input_shape=None):
        c = self.config
        self.word_embeddings = self.add_weight("word_embeddings", (c.vocab_size, c.embedding_width),
                                               initializer=initializer())
        self.position_embeddings = self.add_weight("position_embeddings", (c.max_positions, c.embedding_width),
                                                   initializer=initializer())
        self.token_type_embeddings = self.add_weight(
            "token_type_embeddings", (c.type_vocab_size, c.embedding_width), initializer=initializer()) \
            if c.type_vocab_size else None
        super().build(input_shape)

    def positions(self, x: tf.Tensor, input_ids, attention_mask) -> tf.Tensor:
        """The position embeddings to add to `x` [batch, length, hidden]: 0, 1, 2, ... here."""
        return self.position_embeddings[:tf.shape(x)[1]]

    def call(self, input_ids=None, token_type_ids=None, inputs_embeds=None, attention_mask=None, training=None):
        x = tf.gather(self.word_embeddings, input_ids) if inputs_embeds is None else inputs_embeds
        x = x + self.positions(x, input_ids, attention_mask)
        if self.token_type_embeddings is not None:
            x = x + (tf.gather(self.token_type_embeddings, token_type_ids) if token_type_ids is not None
                     else self.token_type_embeddings[0])
        return self.dropout(self.layer_norm(x), training=training)


class OffsetPositionEmbeddings(Embeddings):
    """Positions numbered from the padding id + 1 (the padding's own row at padding), as
    transformers' create_position_ids_from_input_ids: RoBERTa's and MPNet's."""

    def positions(self, x: tf.Tensor, input_ids, attention_mask) -> tf.Tensor:
        pad = self.config.pad_token_id
        if input_ids is not None:
            real = tf.cast(tf.not_equal(input_ids, pad), tf.int32)
        else:  # the attributions' path, from embeddings: the positions the mask gives
            real = tf.ones(tf.shape(x)[:2], tf.int32) if attention_mask is None else tf.cast(attention_mask, tf.int32)
        return tf.gather(self.position_embeddings, tf.cumsum(real, axis=1) * real + pad)


class Encoder(NoAutoGraph, keras.layers.Layer):
    """Token ids (or their embeddings), attention mask and token types -> {"last_hidden_state",
    "hidden_states"}, in `precision` (one of runtime/precision.py's BUILT), fixed when it is built.
    A family's encoder gives `make_embeddings` and, where it has relative positions, `attention_bias`.
    `frozen` (for prediction only) keeps the matmul kernels in the matmul dtype: see `Dense`."""

    def __init__(self, config, precision: str = "float32", frozen: bool = False, **kwargs):
        super().__init__(name=kwargs.pop("name", config.model_type), dtype=precisions.policy(precision), **kwargs)
        self.config, self.precision = config, precision
        self.frozen = frozen and precisions.matmul_dtype(precision) is not None
        self.embeddings = self.make_embeddings(config)
        self.layers = [TransformerLayer(config, precisions.matmul_dtype(precision), self.frozen, name=f"layer_{i}",
                                        dtype=self.dtype_policy) for i in range(config.num_layers)]

    def make_embeddings(self, config) -> keras.layers.Layer:
        raise NotImplementedError

    def attention_bias(self, length: tf.Tensor) -> tf.Tensor | None:
        """What every layer adds to its attention scores besides the mask ([1, heads, length, length])."""
        return None

    def build_with(self, length: int = 2) -> "Encoder":
        """Create the weights (a call on a dummy batch), so they can be loaded or copied."""
        self(input_ids=np.zeros((1, length), np.int32), attention_mask=np.ones((1, length), np.int32))
        return self

    @property
    def word_embeddings(self) -> tf.Variable:
        if not self.embeddings.built:
            self.embeddings.build(None)
        return self.embeddings.word_embeddings

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None,
             output_hidden_states: bool = False, first_token_only: bool = False, training=None) -> dict:
        x = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, inputs_embeds=inputs_embeds,
                            attention_mask=attention_mask, training=training)
        if attention_mask is None:
            attention_mask = tf.ones(tf.shape(x)[:2], tf.int32)
        bias = (1.0 - tf.cast(attention_mask, tf.float32))[:, None, None, :] * -1e9
        relative = self.attention_bias(tf.shape(x)[1])
        if relative is not None:
            bias = bias + relative
        hidden = [x]
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            x = layer(x, bias, first_token_only=first_token_only and last, training=training)
            hidden.append(x)
        found = {"last_hidden_state": x}
        if output_hidden_states:
            found["hidden_states"] = hidden
        return found

    def get_config(self) -> dict:
        return {**super().get_config(), "precision": self.precision, "frozen": self.frozen,
                "config": {k: v for k, v in dataclasses.asdict(self.config).items() if k != "raw"}}
