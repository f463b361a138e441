"""ELECTRA's encoder (transformers' ElectraModel): BERT's embeddings at `embedding_size`, then
`embeddings_project` to the layers' width where the two differ, then BERT's layers."""
from __future__ import annotations

import tf_keras as keras

from tfclf.models.layers import Embeddings, Encoder, initializer


class ProjectedEmbeddings(Embeddings):
    """Embeddings (LayerNorm and dropout at their own width), then a dense projection to hidden_size."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.project = keras.layers.Dense(config.hidden_size, name="project", kernel_initializer=initializer(),
                                          dtype=self.dtype_policy) if config.embedding_width != config.hidden_size \
            else None

    def call(self, input_ids=None, token_type_ids=None, inputs_embeds=None, attention_mask=None, training=None):
        x = super().call(input_ids, token_type_ids, inputs_embeds, attention_mask, training)
        return x if self.project is None else self.project(x)


class ElectraEncoder(Encoder):
    def make_embeddings(self, config) -> Embeddings:
        return ProjectedEmbeddings(config, name="embeddings", dtype=self.dtype_policy)
