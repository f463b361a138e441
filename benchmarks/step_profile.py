"""Where a training step's time goes, tfclf (TensorFlow) beside the PyTorch recipe, per phase.

    pip install torch==2.13.0                # the `bench` extra, for the PyTorch rows
    python benchmarks/step_profile.py        # prints a table, writes benchmarks/results/step-profile.json

MiniLM-L6 with 28 sigmoid outputs, batch 32 of random ids at the lengths tfclf's batches and
the dynamic-padding recipe's batches have on GoEmotions (24 and 48 positions), in float32.
For each framework and length, after warm-up steps, the mean milliseconds of:
  forward            the model in training mode (dropout on), loss included;
  forward+backward   plus the gradients;
  full step          plus gradient clipping and the AdamW update (tfclf: Keras's train function,
                     as `fit` calls it, with tfclf's optimizer and its monitored metric, macro ROC-AUC; PyTorch: the
                     recipe's clip_grad_norm_, AdamW and scheduler steps).
The differences between rows are the backward pass and the optimizer's share.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, cpu_line, save_json  # noqa: E402
BATCH, LABELS = 32, 28


def timed(fn, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps * 1e3


def batch(length: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, (BATCH, length)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 101, 102
    return ids, np.ones_like(ids), (rng.random((BATCH, LABELS)) < 0.05).astype(np.float32)


def tensorflow_rows(length: int, steps: int) -> dict:
    import tensorflow as tf

    from tfclf.models import backbones
    from tfclf.models.heads import build_classifier
    from tfclf.training import optimization
    from tfclf.tasks import loss as loss_for, monitored_metric

    path = backbones.resolve_checkpoint("minilm-l6")
    model = build_classifier(backbones.build_backbone(backbones.backbone_config(path), path), LABELS)
    loss_fn = loss_for("multilabel")
    model.compile(optimization.make_optimizer(1e-4, 1000), loss_fn, metrics=[monitored_metric("multilabel")])
    ids, mask, y = batch(length)
    x = {"input_ids": tf.constant(ids), "attention_mask": tf.constant(mask)}
    y = tf.constant(y)

    @tf.function
    def forward():
        return loss_fn(y, model(x, training=True))

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    # Keras's own step, called as fit calls it (train_on_batch adds ~300 ms of Python per call)
    train_function = model.make_train_function()
    data = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
    return {"forward": timed(lambda: forward().numpy(), steps),
            "forward+backward": timed(forward_backward, steps),  # returns once the function has run
            "full step": timed(lambda: train_function(data), steps)}


def torch_rows(length: int, steps: int) -> dict:
    import torch
    from transformers import AutoModel, get_linear_schedule_with_warmup

    from tfclf.models.backbones import resolve_checkpoint

    torch.manual_seed(0)
    backbone = AutoModel.from_pretrained(str(resolve_checkpoint("minilm-l6")), add_pooling_layer=False)
    head = torch.nn.Linear(backbone.config.hidden_size, LABELS)
    dropout = torch.nn.Dropout(0.1)
    params = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4, eps=1e-6, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, 100, 1000)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    backbone.train()
    ids, mask, y = (torch.from_numpy(a) for a in batch(length))
    ids, mask = ids.long(), mask.long()

    def loss():
        return loss_fn(head(dropout(backbone(ids, attention_mask=mask)[0][:, 0])), y)

    def forward():
        with torch.no_grad():
            loss()

    def forward_backward():
        optimizer.zero_grad()
        loss().backward()

    def full_step():
        forward_backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()

    return {"forward": timed(forward, steps), "forward+backward": timed(forward_backward, steps),
            "full step": timed(full_step, steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lengths", type=int, nargs="+", default=[24, 48])
    parser.add_argument("--out", type=Path, default=RESULTS / "step-profile.json")
    args = parser.parse_args()
    from tfclf.runtime.cpu import describe

    rows = []
    for length in args.lengths:
        for name, measure in (("tfclf (TensorFlow)", tensorflow_rows), ("PyTorch recipe", torch_rows)):
            found = measure(length, args.steps)
            for phase, ms in found.items():
                rows.append({"framework": name, "length": length, "phase": phase, "ms": round(ms, 1),
                             "us_per_token": round(ms * 1e3 / (BATCH * length), 1)})
                print(f"  {name:<20} length {length:>3} {phase:<17} {ms:8.1f} ms", file=sys.stderr, flush=True)
    result = {"cpu": describe(), "batch": BATCH, "steps": args.steps, "rows": rows}
    save_json(args.out, result)
    print(f"\n{cpu_line(result['cpu'])}; batch {BATCH}, float32, mean of {args.steps} steps")
    print(f"{'framework':<20}{'length':>7}  {'phase':<17}{'ms':>9}{'us/token':>10}")
    for r in rows:
        print(f"{r['framework']:<20}{r['length']:>7}  {r['phase']:<17}{r['ms']:>9.1f}{r['us_per_token']:>10.1f}")


if __name__ == "__main__":
    main()
