"""RoBERTa's encoder (transformers' RobertaModel): word pieces + positions numbered from the padding
id + 1 + its one token type, then BERT's transformer layers (models/layers.py)."""
from __future__ import annotations

from tfclf.models.layers import Embeddings, Encoder, OffsetPositionEmbeddings


class RobertaEncoder(Encoder):
    def make_embeddings(self, config) -> Embeddings:
        return OffsetPositionEmbeddings(config, name="embeddings", dtype=self.dtype_policy)
