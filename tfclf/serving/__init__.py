"""Using a trained model: batched inference in Python, and the SavedModel for TF Serving."""
