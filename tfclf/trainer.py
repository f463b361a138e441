"""Building a run's model and fine-tuning it on token sequences (texts, or chunks of documents).

The run folder (`work`) gets the best checkpoint, the backup a killed run resumes from, and
history.csv as training goes (tfclf/training.py's callbacks).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import tf_keras as keras

from tfclf import backbones, distribute, optimization, precision, tasks, training
from tfclf.models import build_classifier


def build_model(config, backbone_config, checkpoint: Path | None, num_outputs: int,
                previous: keras.Model | None = None) -> keras.Model:
    """The classifier in the run's precision, from `checkpoint`'s weights, or `previous` model's
    (warm start), or random ones (to load weights into). Keras reads its dtype policy when a
    layer is created, so the global policy is set only while this model is built."""
    precision.enable_for_prediction(config.precision)  # process-wide: Grappler options cannot be scoped
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision.POLICIES[config.precision])
    try:
        backbone = backbones.build_backbone(backbone_config, None if previous else checkpoint)
        model = build_classifier(backbone, num_outputs, dropout=config.dropout, pooling=config.pooling)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    if previous is not None:
        model.set_weights(previous.get_weights())
    return model


def lr_multiplier(config, backbone_config) -> Callable[[str], float] | None:
    """Layer-wise learning rates when --layer-decay or --head-lr ask for them, else None."""
    if config.layer_decay == 1.0 and config.head_learning_rate is None:
        return None
    layers = getattr(backbone_config, "num_hidden_layers", None) or backbone_config.n_layers
    head = (config.head_learning_rate or config.learning_rate) / config.learning_rate
    return optimization.layerwise_multiplier(layers, config.layer_decay, head)


def train_sequences(build: Callable[[], keras.Model], config, multiplier, ids: list[np.ndarray],
                    targets: np.ndarray, valid: tuple | None, pad_id: int, work: Path, resume: bool,
                    verbose) -> tuple[keras.Model, dict]:
    """Fine-tune the model `build` makes on token-id sequences (texts, or chunks of documents);
    returns it with the best epoch's weights on `valid`, and the history."""
    strategy = distribute.make_strategy(config.strategy)
    steps = training.count_batches(len(ids), config.batch_size) * config.epochs
    weights = tasks.balanced_weights(config.task, targets) if config.class_weight == "balanced" else None
    with strategy.scope():  # variables (weights and optimizer slots) live where the strategy puts them
        model = build()
        metric = tasks.monitored_metric(config.task, model.output_shape[-1])
        model.compile(optimizer=optimization.make_optimizer(config.learning_rate, steps, config.warmup_fraction,
                                                        config.weight_decay, config.clipnorm, multiplier),
                      loss=tasks.loss(config.task, weights), metrics=[metric], jit_compile=config.xla)
    train_data = training.training_dataset(ids, targets, config.batch_size, pad_id, config.seed)
    valid_data = distribute.shard_by_data(training.inference_batches(valid[0], config.batch_size, pad_id, valid[1])) \
        if valid is not None else None
    monitor = "val_" + metric.name
    callbacks = training.callbacks(work, monitor, config.patience, valid is not None, resume,
                                   history_csv=distribute.is_chief(config.strategy))
    with precision.while_training(config.precision):
        try:
            history = model.fit(distribute.shard_by_data(train_data), validation_data=valid_data,
                                epochs=config.epochs, verbose=verbose, callbacks=callbacks)
        except Exception as err:  # a multi-worker job that lost a peer: one line, not a traceback
            lost = distribute.lost_peer(err) if config.strategy == "multiworker" else None
            if lost is None:
                raise
            raise lost from None
    if (work / "checkpoints" / "best.index").exists():  # the best epoch, not the last one
        model.load_weights(str(work / "checkpoints" / "best")).expect_partial()
    return model, history.history
