"""tfclf: fine-tune BERT-family transformers for text classification in TensorFlow/Keras.

Importing tfclf does not import TensorFlow (the CLI checks its input first, fast);
`TextClassifier` and the builders load it on first use. tfclf's layers and models are Keras 2
(the tf-keras package, imported as `tf_keras`); `tf.keras` stays whatever the user's process
has (Keras 3 unless TF_USE_LEGACY_KERAS is set): tfclf never sets it.
"""
# TensorFlow's BFC allocator on CPU instead of malloc's per-step mmap churn (tfclf/runtime/allocator.py);
# TFCLF_ALLOCATOR=system turns it off.
from tfclf.runtime import allocator as _allocator  # noqa: E402

_allocator.configure()

__version__ = "0.1.0"

_LAZY = {
    "TextClassifier": "tfclf.classifier",
    "RunConfig": "tfclf.config",
    "TfclfError": "tfclf.errors",
    "TokenizerSpec": "tfclf.text.wordpiece",
    "WordPieceTokenizer": "tfclf.text.wordpiece",
    "build_classifier": "tfclf.models.heads",
    "build_text_model": "tfclf.models.heads",
    "load_examples": "tfclf.data.examples",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfclf' has no attribute {name!r}")
