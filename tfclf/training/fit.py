"""Fitting a run's models: the classifier built in the run's precision and fine-tuned on token
sequences (texts, or chunks of documents), and the two-stage model's stage 2 on chunk embeddings.

The run folder (`work`) gets the best checkpoint, the backup a killed run resumes from, and
history.csv as training goes (callbacks.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import tf_keras as keras

from tfclf import tasks
from tfclf.models import backbones
from tfclf.models.heads import build_classifier
from tfclf.models.hierarchical import build_document_classifier
from tfclf.runtime import distribute, precision
from tfclf.training import callbacks as training_callbacks, optimization, pipeline


def build_model(config, backbone_config, checkpoint: Path | None, num_outputs: int,
                previous: keras.Model | None = None, prior: np.ndarray | None = None,
                built_in: str | None = None) -> keras.Model:
    """The classifier in `built_in` (default: what the run trains in, runtime/precision.py), from
    `checkpoint`'s weights, or `previous` model's (warm start), or random ones (to load weights
    into); a new head's biases start at `prior` (tasks.prior_logits)."""
    built_in = built_in or precision.for_training(config.precision)
    backbone = backbones.build_backbone(backbone_config, None if previous else checkpoint, built_in)
    model = build_classifier(backbone, num_outputs, dropout=config.dropout, pooling=config.pooling,
                             token_types=config.pairs and backbone_config.type_vocab_size > 0,
                             head_layer=config.head_layer)
    if previous is not None:
        model.set_weights(previous.get_weights())
    elif prior is not None:
        start_at(model.get_layer("logits"), prior)
    return model


def start_at(head: keras.layers.Dense, prior: np.ndarray) -> None:
    head.bias.assign(np.asarray(prior, np.float32).reshape(head.bias.shape))


def prior_of(task: str, targets: np.ndarray, num_outputs: int,
             class_weights: np.ndarray | None = None) -> np.ndarray | None:
    """Where a new head's biases start: the training labels' prior, unless `class_weights`
    weight the loss as if every class were equally common (then 0, the uniform prior)."""
    return None if class_weights is not None else tasks.prior_logits(task, targets, num_outputs)


def lr_multiplier(config, backbone_config) -> Callable[[str], float] | None:
    """Layer-wise learning rates when --layer-decay or --head-lr ask for them, else None."""
    if config.layer_decay == 1.0 and config.head_learning_rate is None:
        return None
    layers = backbone_config.num_layers
    head = (config.head_learning_rate or config.learning_rate) / config.learning_rate
    return optimization.layerwise_multiplier(layers, config.layer_decay, head, backbone_config.model_type)


def train_sequences(build: Callable[[], keras.Model], config, multiplier, ids: list[np.ndarray],
                    targets: np.ndarray, valid: tuple | None, pad_id: int, work: Path, resume: bool,
                    verbose, class_weights: np.ndarray | None = None, kept: bool = True) -> tuple[keras.Model, dict]:
    """Fine-tune the model `build` makes on token-id sequences (texts, or chunks of documents);
    returns it with the best epoch's weights on `valid`, and the history. `kept`: whether a run
    folder keeps `work` (callbacks.callbacks)."""
    strategy = distribute.make_strategy(config.strategy)
    steps = pipeline.count_batches(len(ids), config.batch_size) * config.epochs
    with strategy.scope():  # variables (weights and optimizer slots) live where the strategy puts them
        model = build()
        metric = tasks.monitored_metric(config.task, model.output_shape[-1])
        model.compile(optimizer=optimization.make_optimizer(config.learning_rate, steps, config.warmup_fraction,
                                                        config.weight_decay, config.clipnorm, multiplier),
                      loss=tasks.loss(config.task, class_weights), metrics=[metric], jit_compile=config.xla)
        # the slots now, not in the first step: a tf.function that makes variables is traced twice
        model.optimizer.build(model.trainable_variables)
    train_data = pipeline.training_dataset(ids, targets, config.batch_size, pad_id, config.seed)
    valid_data = distribute.shard_by_data(pipeline.inference_batches(valid[0], config.batch_size, pad_id, valid[1])) \
        if valid is not None else None
    monitor = "val_" + metric.name
    callbacks = training_callbacks.callbacks(work, monitor, config.patience, valid is not None, resume,
                                   history_csv=distribute.is_chief(config.strategy),
                                   mode=tasks.monitor_mode(config.task), kept=kept)
    precision.announce(config.precision)
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


def train_documents(config, features: dict, targets: np.ndarray, valid: tuple | None, num_outputs: int,
                    work: Path, verbose, class_weights: np.ndarray | None = None) -> keras.Model:
    """Stage 2: each document's fine-tuned chunk embeddings through the document classifier
    (LSTM, mean, max or attention), the best epoch on `valid` kept; `class_weights` as stage 1's."""
    keras.utils.set_random_seed(config.seed)
    doc_model = build_document_classifier(features["chunk_embeddings"].shape[-1], num_outputs, config.doc_pooling,
                                          config.dropout)
    prior = prior_of(config.task, targets, num_outputs, class_weights)
    if prior is not None:
        start_at(doc_model.get_layer("document_logits"), prior)
    metric = tasks.monitored_metric(config.task, num_outputs)
    doc_model.compile(optimizer=keras.optimizers.Adam(config.doc_learning_rate),
                      loss=tasks.loss(config.task, class_weights), metrics=[metric])
    best = work / "checkpoints" / "document_best"
    found = [training_callbacks.HistoryCSV(work / "document_history.csv")]
    if valid is not None:
        mode = tasks.monitor_mode(config.task)
        found += [keras.callbacks.ModelCheckpoint(str(best), monitor="val_" + metric.name, mode=mode,
                                                  save_best_only=True, save_weights_only=True),
                  keras.callbacks.EarlyStopping(monitor="val_" + metric.name, mode=mode,
                                                patience=max(config.patience, 5))]
    doc_model.fit(features, targets, batch_size=config.batch_size, epochs=config.doc_epochs, validation_data=valid,
                  callbacks=found, verbose=verbose)
    if valid is not None:
        doc_model.load_weights(str(best)).expect_partial()
    return doc_model
