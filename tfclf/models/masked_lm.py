"""The masked-LM head and model for further pre-training (training/pretraining.py), on an
encoder of models/layers.py: the head's output projection is the word-embedding table, tied."""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from tfclf.models.layers import ACTIVATIONS, Dense, Encoder, NoAutoGraph, initializer, layer_norm, matmul
from tfclf.runtime import precision as precisions


class MaskedLMHead(NoAutoGraph, keras.layers.Layer):
    """The language-model head BERT, DistilBERT and MPNet share: dense, activation, LayerNorm, then
    the word embeddings (tied) and a bias: hidden states -> a logit per vocabulary entry."""

    def __init__(self, config, matmul_dtype: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config, self.matmul_dtype = config, matmul_dtype
        self.transform = Dense(config.embedding_width, matmul_dtype, name="transform", kernel_initializer=initializer(),
                               dtype=self.dtype_policy)
        self.layer_norm = layer_norm(config, "layer_norm")
        self.activation = ACTIVATIONS[config.activation]

    def build(self, input_shape=None):
        self.bias = self.add_weight("bias", (self.config.vocab_size,), initializer="zeros")
        super().build(input_shape)

    def call(self, hidden, word_embeddings):
        """hidden [..., hidden] (every position, or the masked ones gathered) -> [..., vocabulary]."""
        rows = tf.reshape(hidden, [-1, self.config.hidden_size])  # one rank, whichever came: LayerNorm keeps its axis
        h = self.layer_norm(self.activation(self.transform(rows)))
        logits = matmul(h, tf.cast(word_embeddings, h.dtype), self.matmul_dtype, transpose_b=True) + self.bias
        return tf.reshape(logits, tf.concat([tf.shape(hidden)[:-1], [self.config.vocab_size]], axis=0))


class MaskedLanguageModel(NoAutoGraph, keras.Model):
    """The encoder and its head, for further pre-training: its loss reads the head's logits only
    where a label asks (IGNORE elsewhere), so the vocabulary projection runs for the masked
    positions alone (15 % of them), not for every token."""

    IGNORE = -100

    def __init__(self, encoder: Encoder, **kwargs):
        super().__init__(name=kwargs.pop("name", "masked_lm"), **kwargs)
        self.encoder = encoder
        self.head = MaskedLMHead(encoder.config, precisions.matmul_dtype(encoder.precision), name="mlm_head",
                                 dtype=encoder.dtype_policy)

    def call(self, inputs, training=None):
        """All logits [batch, length, vocabulary] (what Hugging Face's model returns)."""
        hidden = self.encoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                              training=training)["last_hidden_state"]
        return self.head(hidden, self.encoder.word_embeddings)

    @tf.autograph.experimental.do_not_convert  # Python control flow only: nothing for AutoGraph to do
    def train_step(self, data):
        features, labels = data
        picked = labels != self.IGNORE
        with tf.GradientTape() as tape:
            hidden = self.encoder(input_ids=features["input_ids"], attention_mask=features["attention_mask"],
                                  training=True)["last_hidden_state"]
            hidden = tf.ensure_shape(tf.boolean_mask(hidden, picked), [None, self.encoder.config.hidden_size])
            logits = self.head(hidden, self.encoder.word_embeddings)
            targets = tf.boolean_mask(labels, picked)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, tf.cast(logits, tf.float32))
            loss = tf.reduce_sum(losses) / tf.maximum(tf.cast(tf.size(losses), tf.float32), 1.0)  # none masked: 0
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        return {"loss": loss}
