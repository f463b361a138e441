"""Within-task / in-domain further pre-training: the masked language model on your own text.

Sun et al. (2019) found that a few more epochs of BERT's masked-language-model objective on
the task's own (unlabelled) text lower the error of the classifier fine-tuned afterwards.

    tfclf pretrain --text reviews.txt --model minilm-l6 --out checkpoints/minilm-reviews
    tfclf train --model checkpoints/minilm-reviews ...

15 % of the word pieces are picked (or of the words, with --whole-word, all pieces of a
picked word together); of those 80 % become [MASK], 10 % a random token and 10 % stay, and
the model predicts the original. The output folder is a Hugging Face checkpoint (config.json,
model.safetensors with the language-model head under Hugging Face's names, vocab.txt,
tokenizer_config.json): `tfclf train --model` fine-tunes it, and transformers loads it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfclf.config import check_positions
from tfclf.errors import TfclfError
from tfclf.models import backbones, weights
from tfclf.runtime import precision as precisions
from tfclf.storage.atomic import replace_folder
from tfclf.text.sequences import token_ids
from tfclf.text import make_tokenizer
from tfclf.training import optimization, pipeline

IGNORE = -100  # transformers' label for "not a prediction target"


def mask_tokens(ids: np.ndarray, special: np.ndarray, continuation: np.ndarray, vocab_size: int,
                rng: np.random.Generator, probability: float = 0.15, whole_word: bool = False,
                mask_id: int = 103) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking of one padded batch: (inputs, labels) with labels IGNORE where nothing is asked.

    `special` marks [CLS], [SEP] and padding (never picked); `continuation` marks "##" pieces,
    which --whole-word picks together with the piece that starts their word."""
    if whole_word:
        starts = ~special & ~continuation
        picked_start = starts & (rng.random(ids.shape) < probability)
        word = np.cumsum(starts, axis=1)  # word number of every piece, per row
        picked = _spread(picked_start, word) & ~special
    else:
        picked = ~special & (rng.random(ids.shape) < probability)
    labels = np.where(picked, ids, IGNORE).astype(np.int32)
    roll = rng.random(ids.shape)
    inputs = ids.copy()
    inputs[picked & (roll < 0.8)] = mask_id
    random_tokens = picked & (roll >= 0.8) & (roll < 0.9)
    inputs[random_tokens] = rng.integers(0, vocab_size, size=int(random_tokens.sum()))
    return inputs, labels


def _spread(picked_start: np.ndarray, word: np.ndarray) -> np.ndarray:
    """Whether each piece's word was picked: the pick of the word's first piece, for every piece."""
    rows = np.arange(word.shape[0])[:, None]
    chosen = np.zeros((word.shape[0], word.max(initial=0) + 1), bool)
    first = picked_start.nonzero()
    chosen[first[0], word[first]] = True
    return chosen[rows, word]


def pretrain(texts: list[str], model: str, out: str | Path, *, max_length: int = 128, epochs: int = 1,
             batch_size: int = 32, learning_rate: float = 5e-5, probability: float = 0.15,
             whole_word: bool = False, seed: int = 42, precision: str = "auto",
             verbose: int | str = "auto") -> Path:
    """Train the masked language model of `model` on `texts`; write a checkpoint folder to `out`.

    `precision` is auto, float32 or matmul_bfloat16 (tfclf.runtime.precision): the model trained is
    built in it, and the checkpoint is float32 either way."""
    if precision not in precisions.GRAPH_ONLY:
        raise TfclfError(f"pre-training precision must be one of {', '.join(precisions.GRAPH_ONLY)}, got {precision}")
    precisions.require(precision)

    keras.utils.set_random_seed(seed)
    path = backbones.resolve_checkpoint(model)
    config = backbones.backbone_config(path)
    spec = backbones.tokenizer_spec(path, config)
    check_positions(max_length, config.usable_positions, model)
    tokenizer = make_tokenizer(spec, max_length)
    ids = token_ids(tokenizer, texts)
    lm, _ = backbones.masked_language_model(config, path, precisions.for_training(precision))  # a sentence
    # encoder's head starts untrained
    steps = pipeline.count_batches(len(ids), batch_size) * epochs
    lm.compile(optimizer=optimization.make_optimizer(learning_rate, steps))  # the loss is the model's train_step
    data = masked_batches(ids, spec, batch_size, tokenizer.pad_id, probability, whole_word, seed)
    precisions.announce(precision)
    history = lm.fit(data, epochs=epochs, verbose=verbose)

    def write(folder: Path) -> None:
        save_masked_lm(lm, spec, folder)
        (folder / "pretraining_loss.txt").write_text("\n".join(f"{v:.5f}" for v in history.history["loss"]) + "\n")

    out = replace_folder(out, write)  # a crash at any moment leaves the old checkpoint or the new one
    return out


def save_masked_lm(lm, spec, folder: Path) -> None:
    """A Hugging Face folder: config.json (for BertForMaskedLM or DistilBertForMaskedLM), the
    tokenizer's files, and model.safetensors under Hugging Face's names (transformers loads it;
    tests/fixtures/parity/make.py checks that)."""
    config = lm.encoder.config
    raw = {**(config.raw or config.family.to_hugging_face(config)), "architectures": [config.family.mlm_architecture]}
    dataclasses.replace(config, raw=raw).save_pretrained(folder)
    spec.save(folder)
    weights.write_safetensors(folder / "model.safetensors", weights.to_hugging_face(lm.encoder, lm.head))


def masked_batches(ids: list[np.ndarray], spec, batch_size: int, pad_id: int,
                   probability: float, whole_word: bool, seed: int) -> tf.data.Dataset:
    """Length-grouped batches, masked afresh every epoch."""
    vocab = spec.vocab
    if spec.mask_token not in vocab:
        raise TfclfError(f"the vocabulary has no mask token ({spec.mask_token}): this checkpoint cannot be "
                         "pre-trained as a masked LM")
    mask_id = spec.token_id(spec.mask_token)
    special_ids = np.array([spec.token_id(t) for t in (spec.cls_token, spec.sep_token, spec.pad_token)])
    is_continuation = np.array([spec.continues_word(t) for t in vocab])
    lengths = np.fromiter((len(r) for r in ids), np.int64, len(ids))
    rng = np.random.default_rng(seed)
    pad = pipeline.padder(ids, pad_id)

    def mask(input_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return mask_tokens(input_ids, np.isin(input_ids, special_ids), is_continuation[input_ids], len(vocab), rng,
                           probability, whole_word, mask_id)

    def masked(index: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        batch = pad(index)
        inputs, labels = tf.numpy_function(mask, [batch["input_ids"]], [tf.int32, tf.int32], stateful=True)
        shape = tf.shape(batch["input_ids"])
        return {"input_ids": tf.reshape(inputs, shape), "attention_mask": batch["attention_mask"]}, \
            tf.reshape(labels, shape)

    # masking stays in numpy, one call a batch, in order: its seeded generator makes runs repeat
    return pipeline.grouped_index_batches(lengths, batch_size, seed).map(masked).prefetch(tf.data.AUTOTUNE)
