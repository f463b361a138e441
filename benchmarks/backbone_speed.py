"""The backbone alone, this checkout against another: import, build, first step, steady steps.

    python benchmarks/backbone_speed.py                                   # this checkout
    python benchmarks/backbone_speed.py --before ../tfclf-0d775f7 --before-python ../venv-4.54/bin/python

MiniLM-L6 (all-MiniLM-L6-v2) as tfclf's classifier with 28 outputs and [CLS] pooling, float32,
built by `training.fit.build_model` (the same function in both checkouts, whatever backbone it
builds: transformers' TFBertModel before issue 34, tfclf's own layers after). Each checkout runs in
fresh processes, alternating (`--repeats`, a shared VM drifts), and reports per process:
  import        seconds to import the module that builds the backbone (and what it imports);
  build         seconds to build the classifier and load the checkpoint's weights;
  first step    seconds of the first train step (Keras's tracing, Grappler, the step itself);
  train step    median ms of the next `--steps` train steps, batch 32 x 32 tokens (AdamW, clipping);
  first call    seconds of the first forward pass (tracing included);
  forward       median ms of the next `--steps` forward passes, 64 texts x 32 tokens, as predict runs them.
Prints a table of each checkout's medians over its processes and writes
benchmarks/results/backbone-speed-<cpu>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import RESULTS, ROOT, StolenTime, cpu_line, cpu_slug, save_json

KEYS = ("import_s", "build_s", "first_step_s", "train_step_ms", "first_call_s", "forward_ms")


def child(steps: int) -> dict:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    t = time.perf_counter()
    from tfclf.config import RunConfig
    from tfclf.models import backbones
    from tfclf.training import fit, optimization
    found = {"import_s": time.perf_counter() - t}
    checkpoint = backbones.resolve_checkpoint("minilm-l6")
    config = RunConfig(model="minilm-l6", task="multilabel", precision="float32")
    rng = np.random.default_rng(0)

    def batch(n: int) -> dict:
        return {"input_ids": tf.constant(rng.integers(1000, 20000, (n, 32)), tf.int32),
                "attention_mask": tf.ones((n, 32), tf.int32)}

    t = time.perf_counter()
    model = fit.build_model(config, backbones.backbone_config(checkpoint), checkpoint, 28)
    found["build_s"] = time.perf_counter() - t
    model.compile(optimizer=optimization.make_optimizer(1e-4, 1000), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    x, y = batch(32), tf.constant(rng.random((32, 28)) < 0.1, tf.float32)
    t = time.perf_counter()
    model.train_on_batch(x, y)
    found["first_step_s"] = time.perf_counter() - t
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t)
    found["train_step_ms"] = 1000 * statistics.median(times)
    forward = tf.function(lambda inputs: model(inputs, training=False))
    x = batch(64)
    t = time.perf_counter()
    forward(x).numpy()
    found["first_call_s"] = time.perf_counter() - t
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        forward(x).numpy()
        times.append(time.perf_counter() - t)
    found["forward_ms"] = 1000 * statistics.median(times)
    return {k: round(v, 3 if k.endswith("_s") else 1) for k, v in found.items()}


def measure(python: str, tree: Path, steps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{Path(__file__).resolve().parent}")
    with StolenTime() as stolen:
        done = subprocess.run([python, __file__, "--child", "--steps", str(steps)], env=env, check=True,
                              capture_output=True, text=True)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "stolen_cpu_percent": stolen.percent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="another checkout (its tfclf/ is put first on PYTHONPATH)")
    parser.add_argument("--before-python", default=sys.executable, help="the Python (venv) that checkout runs in")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.steps)))
        return
    systems = {"this checkout": (sys.executable, ROOT)}
    if args.before:
        systems = {"before": (args.before_python, args.before.resolve()), **systems}
    runs = {name: [] for name in systems}
    for _ in range(args.repeats):
        for name, (python, tree) in systems.items():
            runs[name].append(measure(python, tree, args.steps))
            print(name, runs[name][-1], flush=True)
    from tfclf.runtime.cpu import describe

    cpu = describe()
    medians = {name: {k: statistics.median(r[k] for r in found) for k in KEYS} for name, found in runs.items()}
    print(cpu_line(cpu))
    print("| checkout | import s | build s | first step s | train step ms | first call s | forward ms |\n"
          "|---|---|---|---|---|---|---|")
    for name, m in medians.items():
        print(f"| {name} | " + " | ".join(f"{m[k]:.2f}" if k.endswith("_s") else f"{m[k]:.0f}" for k in KEYS) + " |")
    save_json(RESULTS / f"backbone-speed-{cpu_slug()}.json",
              {"cpu": cpu, "date": time.strftime("%Y-%m-%d"), "steps": args.steps, "runs": runs, "medians": medians,
               "before": str(args.before) if args.before else None})


if __name__ == "__main__":
    main()
