"""Probe: one MiniLM train step and one predict step at a fixed shape, in fp32, mixed_bfloat16
and fp32 with XLA; each mode in its own process (the precision policy is global).

    python benchmarks/train_step_speed.py            # prints a table, writes results/train-step-speed.json

Batch 32 x 128 tokens of random ids, 28 sigmoid outputs, tfclf's AdamW; the first step
(tracing, compiling) is reported apart, then the mean of 8 steps.
"""
import json
import os
import sys
import time
from pathlib import Path

from common import json_from_fresh_process

RESULTS = Path(__file__).resolve().parent / "results"


def probe(mode: str, length: int) -> dict:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import numpy as np
    import tf_keras as keras

    if mode == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    from tfclf.models import backbones
    from tfclf.models.heads import build_classifier
    from tfclf.tasks import loss as loss_for
    from tfclf.training.optimization import make_optimizer

    path = backbones.resolve_checkpoint("minilm-l6")
    model = build_classifier(backbones.build_backbone(backbones.backbone_config(path), path), 28)
    model.compile(make_optimizer(1e-4, 100), loss_for("multilabel"), jit_compile=mode == "fp32-xla")
    rng = np.random.default_rng(0)
    x = {"input_ids": rng.integers(1000, 30000, (32, length)).astype(np.int32),
         "attention_mask": np.ones((32, length), np.int32)}
    y = (rng.random((32, 28)) < 0.05).astype(np.float32)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(8):
        model.train_on_batch(x, y)
    train = 8 * 32 / (time.perf_counter() - start)
    model.predict_on_batch(x)
    start = time.perf_counter()
    for _ in range(8):
        model.predict_on_batch(x)
    predict = 8 * 32 / (time.perf_counter() - start)
    return {"mode": mode, "length": length, "first_step_s": round(first, 1),
            "train_samples_per_s": round(train, 1), "predict_samples_per_s": round(predict, 1)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(json.dumps(probe(sys.argv[2], int(sys.argv[3]))))
        return
    rows = []
    for mode in ("fp32", "bf16", "fp32-xla"):
        rows.append(json_from_fresh_process(Path(__file__), "--one", mode, "128", quiet=True))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train-step-speed.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"{'mode':<10} {'first step s':>12} {'train samples/s':>16} {'predict samples/s':>18}")
    for r in rows:
        print(f"{r['mode']:<10} {r['first_step_s']:>12} {r['train_samples_per_s']:>16} {r['predict_samples_per_s']:>18}")


if __name__ == "__main__":
    main()
