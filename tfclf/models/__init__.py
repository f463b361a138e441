"""The Keras models: backbones (BERT, DistilBERT), the classifier's pooling and head, the
models on raw strings, and the two-stage model's stage 2."""
