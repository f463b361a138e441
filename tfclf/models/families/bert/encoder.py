"""BERT's and DistilBERT's encoder: models/layers.py's embeddings (word pieces + positions +
token types) and transformer layers. Weights come from Hugging Face files
through models/weights.py and this family's weights.py."""
from __future__ import annotations

from tfclf.models.layers import Embeddings, Encoder


class BertEncoder(Encoder):
    """Token ids (or their embeddings), attention mask and token types -> hidden states."""

    def make_embeddings(self, config) -> Embeddings:
        return Embeddings(config, name="embeddings", dtype=self.dtype_policy)
