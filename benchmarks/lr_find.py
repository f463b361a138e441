"""A learning-rate range test (Smith 2017; ktrain's `lr_find`, fastai's `lr_find`) against tfclf's
width rule, on the 2,000 GoEmotions comments of benchmarks/defaults.py (multi-label) or TREC-6's
training set (multi-class).

    python benchmarks/lr_find.py                              # MiniLM, seeds 0 1 2
    python benchmarks/lr_find.py --model /tmp/small-bert      # the random 128-wide BERT (small_bert.py)
    python benchmarks/lr_find.py --data trec                  # TREC-6's training set: multi-class

The model tfclf would train (the checkpoint, the head's biases at the label prior, AdamW with
tfclf's weight decay and clipping, the length-grouped pipeline, batch 32) takes `--steps` steps
while the learning rate grows geometrically from `--low` to `--high`; each step's own loss is
recorded (train_on_batch, not Keras's running mean), smoothed as ktrain and fastai smooth it (an
exponential average, beta 0.98, bias-corrected), and the test stops once the smoothed loss passes
4x its lowest. Two suggestions, each a common reading of the curve:
  steepest   the rate where the smoothed loss falls fastest against log(rate) (ktrain's suggestion)
  min/10     a tenth of the rate at the smoothed loss's lowest point (fastai's lr_min)
Each seed draws its own batches. Prints a table and writes benchmarks/results/lr-find-<model>-<cpu>.json;
`--figure PNG JSON...` draws results (the curves, the suggestions, the width rule), one panel each.
Training with a suggested rate is benchmarks/defaults.py --variants lr=X (GoEmotions) or
benchmarks/accuracy.py trec --defaults --lr X.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import RESULTS, StolenTime, cpu_slug, print_table, save_json
from defaults import goemotions, sample

BETA = 0.98


def smooth(losses: list[float]) -> np.ndarray:
    """Exponential average with bias correction, as fastai's and ktrain's range tests smooth."""
    out, mean = [], 0.0
    for i, value in enumerate(losses, 1):
        mean = BETA * mean + (1 - BETA) * value
        out.append(mean / (1 - BETA ** i))
    return np.asarray(out)


def suggestions(rates: np.ndarray, smoothed: np.ndarray, skip: int = 10) -> dict:
    """The steepest-descent rate and a tenth of the lowest-loss rate (the first `skip` steps,
    where the average is still settling, are not read)."""
    logs = np.log10(rates)
    slope = np.gradient(smoothed[skip:], logs[skip:])
    lowest = skip + int(np.argmin(smoothed[skip:]))
    return {"steepest": float(rates[skip + int(np.argmin(slope))]), "min/10": float(rates[lowest] / 10)}


def training_set(data: str) -> tuple[str, list[str], np.ndarray]:
    """(task, texts, targets): defaults.py's 2,000 GoEmotions comments, or TREC-6's training set."""
    if data == "trec":
        import tempfile

        from accuracy import prepare_trec

        with tempfile.TemporaryDirectory() as folder:
            frame = pd.read_csv(prepare_trec(Path(folder))[0])
        classes = sorted(set(frame["labels"]))
        return "multiclass", frame["text"].tolist(), frame["labels"].map(classes.index).to_numpy(np.int32)
    texts, labels = goemotions("train")
    train, _ = sample(2000, 0)  # defaults.py's 2,000 comments
    texts, labels = [texts[i] for i in train], [labels[i] for i in train]
    classes = sorted({name for row in labels for name in row})
    return "multilabel", texts, np.array([[c in row for c in classes] for row in labels], np.float32)


def child(model: str, data: str, seed: int, steps: int, low: float, high: float) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras as keras

    from tfclf import TextClassifier, tasks
    from tfclf.config import default_learning_rate
    from tfclf.models import backbones
    from tfclf.text.sequences import token_ids
    from tfclf.training import fit, optimization, pipeline

    task, texts, y = training_set(data)
    clf = TextClassifier.from_pretrained(model, task=task, seed=seed)
    cfg = clf.config
    keras.utils.set_random_seed(seed)
    outputs = y.shape[1] if task == "multilabel" else int(y.max()) + 1
    net = fit.build_model(cfg, clf.backbone_config, clf.checkpoint or backbones.resolve_checkpoint(cfg.model),
                          outputs, prior=fit.prior_of(task, y, outputs))
    # make_optimizer's AdamW (decay off biases and LayerNorm, clipping), at a constant rate set each step
    optimizer = optimization.adamw(low, cfg.weight_decay, cfg.clipnorm)
    net.compile(optimizer=optimizer, loss=tasks.loss(task))
    batches = pipeline.training_dataset(token_ids(clf.tokenizer, texts), y, cfg.batch_size,
                                        clf.tokenizer.pad_id, seed).repeat()
    rates, losses = [], []
    factor = (high / low) ** (1 / (steps - 1))
    start = time.perf_counter()
    for step, (x, target) in enumerate(batches.take(steps)):
        rate = low * factor ** step
        optimizer.learning_rate = rate
        loss = float(net.train_on_batch(x, target, reset_metrics=True))
        rates.append(rate)
        losses.append(loss)
        smoothed = smooth(losses)
        if not math.isfinite(loss) or (step > 10 and smoothed[-1] > 4 * smoothed[10:].min()):
            break
    smoothed = smooth(losses)
    return {"model": model, "data": data, "width": clf.backbone_config.hidden_size, "seed": seed,
            "seconds": round(time.perf_counter() - start, 1),
            "rule": default_learning_rate(clf.backbone_config.hidden_size), "rates": rates, "losses": losses,
            "smoothed": smoothed.tolist(), **suggestions(np.asarray(rates), smoothed)}


def plot(results: list[list[dict]], path: Path) -> None:
    """One panel per range test (its seeds' curves, their suggestions, the width rule)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, rows in zip(axes[0], results):
        for row in rows:
            line, = ax.plot(row["rates"], row["smoothed"], label=f"seed {row['seed']}")
            for key, marker in (("steepest", "o"), ("min/10", "s")):
                ax.plot([row[key]], [np.interp(np.log(row[key]), np.log(row["rates"]), row["smoothed"])], marker,
                        color=line.get_color())
        ax.axvline(rows[0]["rule"], color="k", linestyle="--", label=f"width rule {rows[0]['rule']:g}")
        ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss",
               title=f"{Path(rows[0]['model']).name} on {rows[0].get('data', 'goemotions-2k')}")
        ax.legend(fontsize="small")
    fig.suptitle("learning-rate range tests (o steepest descent, s min/10)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--data", choices=["goemotions-2k", "trec"], default="goemotions-2k")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--low", type=float, default=1e-6)
    parser.add_argument("--high", type=float, default=1e-1)
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/lr-find-<model>-<cpu>.json")
    parser.add_argument("--figure", type=Path, nargs="+", metavar=("PNG", "JSON"),
                        help="only draw: PNG, one panel per results JSON that follows")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.figure:
        plot([json.loads(f.read_text())["rows"] for f in args.figure[1:]], args.figure[0])
        return
    if args.child is not None:
        print(json.dumps(child(args.model, args.data, args.child, args.steps, args.low, args.high)))
        return
    rows = []
    for seed in args.seeds:
        command = [sys.executable, __file__, "--child", str(seed), "--model", args.model, "--data", args.data,
                   "--steps", str(args.steps),
                   "--low", str(args.low), "--high", str(args.high)]
        with StolenTime() as stolen:
            done = subprocess.run(command, check=True, capture_output=True, text=True)
        rows.append({**json.loads(done.stdout.strip().splitlines()[-1]), "stolen_cpu_percent": stolen.percent})
    from tfclf.runtime.cpu import describe

    cpu, name = describe(), Path(args.model).name
    print_table(cpu, ["model", "width", "seed", "steps run", "steepest", "min/10", "width rule", "s"],
                [[name, r["width"], r["seed"], len(r["rates"]), f"{r['steepest']:.2g}", f"{r['min/10']:.2g}",
                  f"{r['rule']:g}", r["seconds"]] for r in rows])
    out = args.out or RESULTS / f"lr-find-{name}{'-trec' if args.data == 'trec' else ''}-{cpu_slug()}.json"
    save_json(out, {"cpu": cpu, "date": time.strftime("%Y-%m-%d"), "steps": args.steps, "low": args.low,
                    "high": args.high, "rows": rows})


if __name__ == "__main__":
    main()
