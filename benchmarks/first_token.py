"""The [CLS]-only last layer: the same classifier with its last layer computed for [CLS] alone
(what tfclf runs when the pooling reads only [CLS]) and for every position.

    python benchmarks/first_token.py     # prints a table, writes benchmarks/results/first-token.json

MiniLM-L6 (6 layers, 384 wide) with 28 outputs and [CLS] pooling, batch 32 of random ids at
several lengths, float32. Both variants are the same Keras layers and weights in one process:
`build_classifier`'s model, and the same with `first_token_only=False` (tfclf's own BERT layer
takes it as an option, models/layers.py). Each is timed
in rounds that alternate between them (a shared VM drifts), `--steps` calls a round; the table
has the median round's milliseconds per call of:
  inference   the model's forward pass in a tf.function (training=False), as `predict_proba` runs it;
  train step  Keras's train function as `fit` calls it (tfclf's AdamW, clipping, macro ROC-AUC).
Before timing, the two variants' logits are compared.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, cpu_line, save_json  # noqa: E402

BATCH, LABELS = 32, 28
VARIANTS = ("[CLS] only", "every position")


def models():
    """(tfclf's classifier, the same layers as a plain functional model), each compiled."""
    from tfclf.models import backbones
    from tfclf.models.heads import build_classifier
    from tfclf.training import optimization
    from tfclf.tasks import loss, monitored_metric

    path = backbones.resolve_checkpoint("minilm-l6")
    backbone = backbones.build_backbone(backbones.backbone_config(path), path)
    model = build_classifier(backbone, LABELS)
    plain = build_classifier(backbone, LABELS, first_token_only=False)  # the same layers, every position
    plain.get_layer("logits").set_weights(model.get_layer("logits").get_weights())
    for m in (model, plain):
        m.compile(optimization.make_optimizer(1e-4, 10_000), loss("multilabel"),
                  metrics=[monitored_metric("multilabel")])
    return dict(zip(VARIANTS, (model, plain)))


def calls(model, length: int) -> dict:
    """Per phase, a function making one call of `model` on a batch of `length` positions."""
    import tensorflow as tf

    rng = np.random.default_rng(length)
    ids = rng.integers(1000, 30000, (BATCH, length)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 101, 102
    x = {"input_ids": tf.constant(ids), "attention_mask": tf.ones_like(tf.constant(ids))}
    y = tf.constant((rng.random((BATCH, LABELS)) < 0.05).astype(np.float32))
    forward = tf.function(lambda: model(x, training=False))
    train_function = model.make_train_function()
    data = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
    return {"inference": lambda: forward().numpy(), "train step": lambda: train_function(data)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 24, 48])
    parser.add_argument("--steps", type=int, default=5, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per variant, alternating")
    parser.add_argument("--out", type=Path, default=RESULTS / "first-token.json")
    args = parser.parse_args()
    from tfclf.runtime.cpu import describe

    built = models()
    rows = []
    for length in args.lengths:
        fns = {name: calls(model, length) for name, model in built.items()}
        gap = float(np.abs(fns[VARIANTS[0]]["inference"]() - fns[VARIANTS[1]]["inference"]()).max())  # logits
        for phase in ("inference", "train step"):
            rounds = {name: [] for name in VARIANTS}
            for name in VARIANTS:  # warm-up: tracing, Grappler, oneDNN's primitives
                for _ in range(2):
                    fns[name][phase]()
            for _ in range(args.rounds):
                for name in VARIANTS:
                    start = time.perf_counter()
                    for _ in range(args.steps):
                        fns[name][phase]()
                    rounds[name].append((time.perf_counter() - start) / args.steps * 1e3)
            ms = {name: statistics.median(r) for name, r in rounds.items()}
            rows.append({"length": length, "phase": phase, **{f"ms {k}": round(v, 1) for k, v in ms.items()},
                         "speed-up": round(ms[VARIANTS[1]] / ms[VARIANTS[0]], 3), "max logit difference": gap})
            print(f"  length {length:>3} {phase:<11} " + "  ".join(f"{k} {v:7.1f} ms" for k, v in ms.items()),
                  file=sys.stderr, flush=True)
    result = {"cpu": describe(), "batch": BATCH, "steps": args.steps, "rounds": args.rounds, "rows": rows}
    save_json(args.out, result)
    print(f"\n{cpu_line(result['cpu'])}; batch {BATCH}, float32, median of {args.rounds} rounds of {args.steps} calls")
    print(f"{'length':>6} {'phase':<11} {'[CLS] only ms':>14} {'every position ms':>18} {'speed-up':>9} {'max |logit diff|':>17}")
    for r in rows:
        print(f"{r['length']:>6} {r['phase']:<11} {r['ms [CLS] only']:>14.1f} {r['ms every position']:>18.1f} "
              f"{r['speed-up']:>8.2f}x {r['max logit difference']:>17.1e}")


if __name__ == "__main__":
    main()
