"""The optimizer: AdamW with warm-up then linear decay, layer-wise rates, one fused kernel a variable.

Keras's AdamW builds about twenty element-wise ops per variable, each allocating a temporary
the size of the variable (the 12M-entry embedding matrix included), and evaluates the
learning-rate schedule twice per variable. `AdamW` below computes the same update (decoupled
weight decay, then Adam with bias correction) with TensorFlow's fused `ResourceApplyAdam`
kernel: one pass over each variable, no temporaries, and far fewer ops to trace.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf
import tf_keras as keras

from tfclf.models.layers import depth


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        self.peak = float(peak)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = step / self.warmup_steps if self.warmup_steps > 0 else 1.0
        decay = (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1)
        return self.peak * tf.maximum(0.0, tf.minimum(warm, decay))

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def make_optimizer(learning_rate: float, total_steps: int, warmup_fraction: float = 0.1,
                   weight_decay: float = 0.01, clipnorm: float = 1.0,
                   multiplier: Callable[[str], float] | None = None) -> "AdamW":
    """AdamW, no decay on biases and LayerNorm, gradients clipped by their global norm.

    With `multiplier` (variable name -> factor, see `layerwise_multiplier`) each variable's
    step, weight decay included, is scaled by its factor."""
    schedule = WarmupLinearDecay(learning_rate, total_steps, round(warmup_fraction * total_steps))
    return adamw(schedule, weight_decay, clipnorm, multiplier)


def adamw(learning_rate, weight_decay: float = 0.01, clipnorm: float = 1.0,
          multiplier: Callable[[str], float] | None = None) -> "AdamW":
    """tfclf's AdamW at `learning_rate` (a schedule, or a number the caller may set each step)."""
    optimizer = AdamW(multiplier, learning_rate=learning_rate, weight_decay=weight_decay,
                      global_clipnorm=clipnorm, epsilon=1e-6)
    optimizer.exclude_from_weight_decay(var_names=["bias", "LayerNorm", "layer_norm"])
    return optimizer


def layerwise_multiplier(num_layers: int, layer_decay: float = 1.0, head_multiplier: float = 1.0,
                         encoder: str | None = None) -> Callable[[str], float]:
    """Layer-wise learning-rate decay (Sun et al. 2019): layer l of L (1-based) gets ξ^(L-l),
    the embeddings (and what else the encoder holds outside its layers, MPNet's relative-position
    bias) ξ^L, and everything outside the backbone (the head) `head_multiplier`. `encoder` is the
    encoder's name, its variables' scope (models/layers.py `depth`)."""
    def multiplier(name: str) -> float:
        found = depth(name, encoder)
        if found is None:
            return head_multiplier
        return layer_decay ** (num_layers - found)

    return multiplier


class AdamW(keras.optimizers.AdamW):
    """Keras's AdamW (amsgrad off), each variable updated by one fused kernel.

    Adam normalises gradients, so a layer-wise factor scales the step (the learning rate,
    decoupled weight decay included), never the gradient."""

    def __init__(self, multiplier: Callable[[str], float] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.multiplier = multiplier or (lambda name: 1.0)
        self._step = _StepScalars()  # not a dict attribute: Keras would try to checkpoint it

    def learning_rate_of(self, variable: tf.Variable) -> float:
        """The learning rate this variable gets at the current step."""
        return float(self.learning_rate) * self.multiplier(variable.name)

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        self._step.cache = {}  # the step's learning rate and bias corrections, built once per dtype
        try:
            return super().apply_gradients(grads_and_vars, *args, **kwargs)
        finally:
            self._step.cache = None

    def _apply_weight_decay(self, variables) -> None:
        pass  # applied per variable, scaled, in update_step

    def _step_scalars(self, dtype) -> tuple:
        """(learning rate, beta1^t, beta2^t) of the step being applied, in `dtype`."""
        cache = self._step.cache if self._step.cache is not None else {}
        if dtype not in cache:
            step = tf.cast(self.iterations + 1, dtype)
            cache[dtype] = (tf.cast(self.learning_rate, dtype), tf.pow(tf.cast(self.beta_1, dtype), step),
                            tf.pow(tf.cast(self.beta_2, dtype), step))
        return cache[dtype]

    def update_step(self, gradient, variable):
        if self.amsgrad:
            raise ValueError("tfclf's fused AdamW has no amsgrad")
        lr, beta_1_power, beta_2_power = self._step_scalars(variable.dtype)
        lr = lr * self.multiplier(variable.name)
        if self.weight_decay and self._use_weight_decay(variable):
            variable.assign_sub(variable * (tf.cast(self.weight_decay, variable.dtype) * lr))
        if isinstance(gradient, tf.IndexedSlices):  # the embeddings': Keras's sparse path is dense too
            gradient = tf.convert_to_tensor(gradient)
        index = self._index_dict[self._var_key(variable)]
        dtype = variable.dtype
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=beta_1_power, beta2_power=beta_2_power, lr=lr, beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype), epsilon=tf.cast(self.epsilon, dtype), grad=gradient,
            use_locking=False)


class _StepScalars:
    """Holds one apply_gradients call's shared scalars (None outside a call)."""
    cache: dict | None = None
