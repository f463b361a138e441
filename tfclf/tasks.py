"""What a task means, in one place: binary, multi-class, multi-label, regression.

- binary: one sigmoid unit, the probability of the second class (the positive one); one
  threshold on it. Targets are [n, 1] floats.
- multiclass: one unit per class, softmax, the most probable class. Targets are class indices.
- multilabel: one sigmoid unit per label, a tuned threshold per label; a text may get any
  number of labels. Targets are [n, labels] multi-hot floats.
- regression: one linear unit, the predicted number (its "probability" is the score itself);
  mean-squared error. Targets are [n, 1] floats; the label space has one name, the target's.

Models emit logits; everything that turns logits into a loss, probabilities, decisions or a
SavedModel's answers for a task is here, for numpy (decisions) and TensorFlow (the rest).
TensorFlow is imported when a TensorFlow function is first called, so that the CLI's checks
and reports, which use this module, start in a fraction of a second.
"""
from __future__ import annotations

import functools

import numpy as np

TASKS = ("binary", "multiclass", "multilabel", "regression")


def units(task: str, num_classes: int) -> int:
    """Units of the Dense head."""
    return 1 if task in ("binary", "regression") else num_classes


def require_classes(task: str, what: str) -> None:
    """`what` (predict_proba, a probability threshold) is for classifiers: a regression says so."""
    if task == "regression":
        from tfclf.errors import TfclfError

        raise TfclfError(f"{what}: a regression run predicts a score, not probabilities; use predict")


def tunes_thresholds(task: str) -> bool:
    """Multi-label thresholds are tuned per label on validation data; binary keeps 0.5."""
    return task == "multilabel"


def prediction_key(task: str) -> str:
    return {"multilabel": "labels", "regression": "score"}.get(task, "label")


def monitor_mode(task: str) -> str:
    """Whether the monitored metric (monitored_metric) is better higher or lower."""
    return "min" if task == "regression" else "max"


# ------------------------------------------------------------------ targets and decisions (numpy)
def targets(task: str, encoded: np.ndarray) -> np.ndarray:
    """What the loss takes, from class indices (binary, multi-class) or a multi-hot matrix."""
    if task == "multilabel":
        return encoded.astype(np.float32)
    return encoded.reshape(-1, 1).astype(np.float32) if task in ("binary", "regression") else encoded.astype(np.int32)


def decide(task: str, probs: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
    """Class indices (binary, multi-class), a multi-hot matrix (multi-label) or the scores (regression)."""
    if task == "multiclass":
        return probs.argmax(axis=1)
    if task == "regression":
        return np.asarray(probs, np.float64)[:, 0]
    cut = 0.5 if thresholds is None else np.asarray(thresholds)
    decided = (probs >= cut).astype(np.int32)
    return decided[:, 0] if task == "binary" else decided


def explained_classes(task: str, probs: np.ndarray, thresholds: np.ndarray | None = None) -> list[list[int]]:
    """The class indices an explanation shows by default: the predicted class, or each label over
    its threshold (the most probable one when none is)."""
    if task == "regression":
        return [[0] for _ in probs]
    decided = decide(task, probs, thresholds)
    if task != "multilabel":
        return [[int(c)] for c in decided]
    return [list(np.flatnonzero(row)) or [int(p.argmax())] for row, p in zip(decided, probs)]


def score_unit(task: str, class_index: int) -> tuple[int, float]:
    """(logit unit, sign) whose product is the score of a class: binary's one unit is the second
    class's logit, so the first class's score is its negation."""
    if task == "binary":
        return 0, 1.0 if class_index == 1 else -1.0
    return class_index, 1.0


def class_probabilities(task: str, probs: np.ndarray) -> np.ndarray:
    """One column per class name: binary's single unit becomes [P(first), P(second)]."""
    return np.concatenate([1 - probs, probs], axis=1) if task == "binary" else probs


def unit_probabilities(task: str, probs: np.ndarray) -> np.ndarray:
    """The inverse: the head's units from one column per class (binary keeps the second class's)."""
    probs = np.asarray(probs)
    return probs[:, 1:] if task == "binary" and probs.shape[1] == 2 else probs


# ------------------------------------------------------------------ TensorFlow
def activation(task: str) -> str:
    return {"multiclass": "softmax", "regression": "linear"}.get(task, "sigmoid")


def probabilities(logits, task: str):
    """The head's outputs: probabilities, or for regression the scores themselves."""
    import tensorflow as tf

    if task == "regression":
        return tf.cast(logits, tf.float32)
    return tf.nn.softmax(logits) if task == "multiclass" else tf.sigmoid(logits)


def serving_outputs(task: str, logits, class_names, thresholds) -> dict:
    """A SavedModel's answers: a probability per class name, and the decided label(s) by name."""
    import tensorflow as tf

    logits = tf.cast(logits, tf.float32)
    if task == "regression":
        return {"score": logits[:, 0]}
    if task == "multiclass":
        probs = tf.nn.softmax(logits)
        return {"probabilities": probs, "label": tf.gather(class_names, tf.argmax(probs, axis=1))}
    if task == "binary":
        positive = tf.sigmoid(logits)
        probs = tf.concat([1.0 - positive, positive], axis=1)
        decided = tf.cast(positive[:, 0] >= thresholds[0], tf.int32)
        return {"probabilities": probs, "label": tf.gather(class_names, decided)}
    probs = tf.sigmoid(logits)
    decided = probs >= thresholds
    names = tf.broadcast_to(class_names, tf.shape(probs))
    return {"probabilities": probs, "labels": tf.where(decided, names, ""), "decisions": tf.cast(decided, tf.int32)}


def prior_logits(task: str, targets: np.ndarray, num_outputs: int) -> np.ndarray:
    """The head's starting biases: the logits whose probabilities are the training set's label
    frequencies (per-label log-odds for sigmoid heads, log class frequencies for softmax), so
    the first steps need not spend themselves learning how common each label is (a sigmoid head
    at bias 0 says p = 0.5 for a label 3 % of texts carry). Frequencies are clipped to
    [1e-4, 1 - 1e-4]: a label absent from training gets a low start, not -inf."""
    targets = np.asarray(targets)
    if task == "regression":  # the mean: the first steps need not learn where the targets lie
        return np.full(num_outputs, targets.astype(np.float64).mean() if len(targets) else 0.0, np.float32)
    if task == "multiclass":
        counts = np.bincount(targets.astype(np.int64).ravel(), minlength=num_outputs)[:num_outputs]
        logits = np.log(np.clip(counts / max(len(targets), 1), 1e-4, 1.0))
        return (logits - logits.mean()).astype(np.float32)  # softmax ignores a shift: centred at 0
    rate = np.clip(targets.reshape(len(targets), -1).mean(axis=0), 1e-4, 1 - 1e-4)
    return np.log(rate / (1 - rate)).astype(np.float32)


def loss(task: str, class_weights=None):
    """Cross-entropy on logits: sparse categorical for multi-class, binary otherwise; with
    `class_weights` (see `balanced_weights`), the weighted form."""
    import tf_keras as keras

    if task == "regression":
        return keras.losses.MeanSquaredError()
    if class_weights is not None:
        return _weighted_cross_entropy()(task, class_weights)
    if task == "multiclass":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras.losses.BinaryCrossentropy(from_logits=True)


def __getattr__(name: str):
    if name == "WeightedCrossEntropy":  # a Keras class: defined once TensorFlow is wanted
        return _weighted_cross_entropy()
    raise AttributeError(name)


@functools.cache
def _weighted_cross_entropy():
    import tensorflow as tf
    import tf_keras as keras

    class WeightedCrossEntropy(keras.losses.Loss):
        """Multi-class: each example weighted by its class's weight. Binary: weights[0] for
        negatives, weights[1] for positives. Multi-label: weights[j] multiplies the positive term
        of label j (a per-label pos_weight), so rare labels are not drowned by their negatives."""

        def __init__(self, task: str, weights, **kwargs):
            super().__init__(name=kwargs.pop("name", "weighted_cross_entropy"), **kwargs)
            self.task = task
            self.weights = [float(w) for w in weights]

        def call(self, y_true: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
            weights = tf.constant(self.weights, tf.float32)
            logits = tf.cast(logits, tf.float32)
            if self.task == "multiclass":
                y_true = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
                return tf.nn.sparse_softmax_cross_entropy_with_logits(y_true, logits) * tf.gather(weights, y_true)
            y_true = tf.cast(y_true, tf.float32)
            if self.task == "binary":
                per_unit = tf.nn.sigmoid_cross_entropy_with_logits(y_true, logits)
                return tf.reduce_mean(per_unit * (y_true * weights[1] + (1.0 - y_true) * weights[0]), axis=-1)
            return tf.reduce_mean(tf.nn.weighted_cross_entropy_with_logits(y_true, logits, weights), axis=-1)

        def get_config(self) -> dict:
            return {**super().get_config(), "task": self.task, "weights": self.weights}

    return WeightedCrossEntropy


def balanced_weights(task: str, targets: np.ndarray, limit: float = 100.0) -> np.ndarray:
    """`--class-weight balanced`: n / (classes * count) per class (scikit-learn's rule) for
    multi-class and binary; negatives / positives per label for multi-label. Capped at `limit`
    so that a label with one example cannot dominate."""
    from sklearn.utils.class_weight import compute_class_weight

    if task == "multilabel":
        positives = targets.sum(axis=0)
        return np.minimum((len(targets) - positives) / np.maximum(positives, 1), limit)
    flat = np.asarray(targets).reshape(-1).astype(int)
    classes = np.arange(int(flat.max()) + 1 if task == "multiclass" else 2)
    present = np.isin(classes, flat)
    weights = np.ones(len(classes))
    weights[present] = compute_class_weight("balanced", classes=classes[present], y=flat)
    return np.minimum(weights, limit)


def monitored_metric(task: str, num_outputs: int | None = None):
    """What early stopping and the best checkpoint watch: accuracy, or macro ROC-AUC for multi-label
    (threshold-free, as the thresholds are tuned after training).

    Given `num_outputs`, the multi-label AUC makes its variables now. Made in the first train
    step, they had TensorFlow trace the train function a second time, and that trace is most
    of a fit's fixed cost: for MiniLM the first step took 8.6-8.9 s instead of 13.5-15.2 s
    (Intel Xeon, 2 cores, 2026-11-23)."""
    import tf_keras as keras

    if task == "regression":
        return keras.metrics.MeanSquaredError(name="mse")
    if task == "multiclass":
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    if task == "binary":
        return keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)  # on logits
    return keras.metrics.AUC(name="auc", multi_label=True, num_labels=num_outputs, from_logits=True)
