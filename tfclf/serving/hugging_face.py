"""A one-stage run as a Hugging Face folder that transformers' AutoModelForSequenceClassification
loads (PyTorch): how a model trained with tfclf goes into the PyTorch ecosystem.

tfclf's head reads the [CLS] state: logits = W h + b. Hugging Face's heads put a layer between
([CLS] -> a tanh or ReLU layer -> the classifier); each family's weights.py
(`classification_head`) sets that layer to pass [CLS] through, and says to what precision.

Binary runs (one sigmoid unit z) are exported with two logits, 0 and z: their softmax is tfclf's
[1 - p, p]. Regression runs have one logit, the score (problem_type regression). Multi-label runs set problem_type to multi_label_classification (a sigmoid per label);
their tuned thresholds are in config.json under `tfclf_thresholds`, which transformers keeps.
tests/fixtures/parity/make.py checks the logits with transformers 5.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tfclf.errors import TfclfError, option
from tfclf.models import weights
from tfclf.storage.atomic import replace_folder


def export_hugging_face(classifier, out: str | Path) -> Path:
    """Write `classifier` (a one-stage TextClassifier on [CLS]) as a Hugging Face folder at `out`."""
    config, task = classifier.config, classifier.config.task
    if classifier.reader.two_stages:
        raise TfclfError("a hierarchical run has no Hugging Face model class (its stage 2 reads chunk embeddings): "
                         "export it as a SavedModel (tfclf export without --format)")
    if config.pooling != "cls":
        raise TfclfError(f"{option('pooling')} {config.pooling} has no Hugging Face model class (theirs read [CLS]); "
                         f"the Hugging Face export needs a run trained with {option('pooling')} cls")
    model = classifier.model
    encoder = model.backbone
    dense = model.get_layer("logits")
    kernel, bias = dense.kernel.numpy(), dense.bias.numpy()  # [hidden, units], [units]
    if task == "binary":  # two logits, 0 and z: softmax gives [1 - sigmoid(z), sigmoid(z)]
        kernel, bias = np.concatenate([np.zeros_like(kernel), kernel], axis=1), np.concatenate([[0.0], bias])
    tensors = {**weights.to_hugging_face(encoder), **_head(model, encoder, kernel, bias)}
    names = classifier.labels.classes
    raw = {**(encoder.config.raw or encoder.config.family.to_hugging_face(encoder.config)),
           "architectures": [encoder.config.family.classifier_architecture],
           "id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)},
           "problem_type": {"multilabel": "multi_label_classification", "regression": "regression"}.get(
               task, "single_label_classification")}
    if task == "multilabel":
        raw["tfclf_thresholds"] = dict(zip(names, map(float, classifier.thresholds)))

    def write(folder: Path) -> None:
        import dataclasses

        dataclasses.replace(encoder.config, raw=raw).save_pretrained(folder)
        classifier.tokenizer.spec.save(folder)
        weights.write_safetensors(folder / "model.safetensors",
                                  {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()})

    return replace_folder(Path(out), write)


def _head(model, encoder, kernel: np.ndarray, bias: np.ndarray) -> dict[str, np.ndarray]:
    """The Hugging Face head's weights: a head kept from a checkpoint (keep_head) as it is, when its
    layer's activation is the one the family's head has; tfclf's own through the family's rule."""
    if "pre_logits" not in [layer.name for layer in model.layers]:
        return encoder.config.family.weight_map().classification_head(encoder, kernel, bias)
    hidden = model.get_layer("pre_logits")
    wanted = encoder.config.family.weight_map().HEADS[encoder.config.model_type][1]
    if hidden.activation.__name__ != wanted:
        raise TfclfError(f"head_layer {hidden.activation.__name__} has no Hugging Face class: "
                         f"{encoder.config.family.classifier_architecture}'s head layer is {wanted}")
    return weights.head_tensors(encoder.config, hidden.kernel.numpy(), hidden.bias.numpy(), kernel, bias)
