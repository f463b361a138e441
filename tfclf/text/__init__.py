"""Text to token ids: WordPiece in the TensorFlow graph (the same ids as Hugging Face), then
truncation, chunks and padded batches."""
