"""What the defaults learn on small data: a newcomer's first multi-label run.

    python benchmarks/defaults.py                     # 2,000 GoEmotions comments, 400 to validate, dev to test
    python benchmarks/defaults.py --variants prior-off prior --epochs 1

The issue's reproduction: all-MiniLM-L6-v2, a seeded sample of 2,000 GoEmotions training comments
(seed 0), 400 other training comments as --valid (early stopping, the best epoch, thresholds), every
other setting at its default unless a variant says otherwise; the figures are on GoEmotions dev
(5,426 comments, never seen in training or tuning). Variants:
  prior-off   the head's biases start at 0 (tfclf before the prior start)
  prior       the head's biases start at the training labels' log-odds (tasks.prior_logits)
  lr=X        prior, and peak learning rate X
Each variant trains in a fresh process, into benchmarks/.work/defaults/VARIANT (a run folder). Prints a
table and writes benchmarks/results/defaults-<cpu>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import RESULTS, ROOT, StolenTime, cpu_slug, print_table, save_json

SHARED = ROOT.parent / "shared" / "data" / "goemotions"
WORK = ROOT / "benchmarks" / ".work" / "defaults"


def goemotions(split: str) -> tuple[list[str], list[list[str]]]:
    names = (SHARED / "labels.txt").read_text(encoding="utf-8").split()
    frame = pd.read_csv(SHARED / f"{split}.tsv", sep="\t", header=None, quoting=3, names=["text", "ids", "id"],
                        dtype=str, keep_default_na=False)
    return frame["text"].tolist(), [[names[int(i)] for i in ids.split(",")] for ids in frame["ids"]]


def sample(train_n: int, valid_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of GoEmotions train: `train_n` drawn with seed 0, and the next `valid_n` of that draw."""
    order = np.random.default_rng(0).permutation(len(goemotions("train")[0]))
    return order[:train_n], order[train_n:train_n + valid_n]


def child(variant: str, train_n: int, valid_n: int, epochs: int | None, model: str) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from sklearn.metrics import f1_score, hamming_loss, roc_auc_score

    from tfclf import TextClassifier
    from tfclf.training import fit

    texts, labels = goemotions("train")
    train, valid = sample(train_n, valid_n)
    settings = {} if epochs is None else {"epochs": epochs}
    if variant == "prior-off":
        fit.prior_of = lambda *args: None
    elif variant.startswith("lr="):
        settings["learning_rate"] = float(variant[3:])
    clf = TextClassifier.from_pretrained(model, task="multilabel", **settings)
    start = time.perf_counter()
    clf.fit([texts[i] for i in train], [labels[i] for i in train], valid=[texts[i] for i in valid],
            valid_labels=[labels[i] for i in valid], verbose=0, run_dir=WORK / f"{Path(model).name}-{variant}", overwrite=True)
    seconds = time.perf_counter() - start
    dev_texts, dev_labels = goemotions("dev")
    probs = clf.predict_proba(dev_texts)
    classes = list(clf.classes_)
    y = np.array([[c in row for c in classes] for row in dev_labels], np.int32)
    decided = (probs >= np.asarray(clf.thresholds)).astype(np.int32)
    present = y.sum(0) > 0
    return {"variant": variant, "model": model, "settings": {k: getattr(clf.config, k) for k in ("learning_rate", "epochs",
                                                                                "max_length", "batch_size")},
            "epochs_run": len(clf.history.get("loss", [])), "train_seconds": round(seconds, 1),
            "dev_macro_roc_auc": float(roc_auc_score(y[:, present], probs[:, present], average="macro")),
            "dev_macro_f1": float(f1_score(y[:, present], decided[:, present], average="macro", zero_division=0)),
            "dev_micro_f1": float(f1_score(y, decided, average="micro", zero_division=0)),
            "dev_hamming_loss": float(hamming_loss(y, decided))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["prior-off", "prior"])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--valid", type=int, default=400)
    parser.add_argument("--epochs", type=int, help="default: tfclf's default")
    parser.add_argument("--model", default="minilm-l6", help="a checkpoint name or folder (default minilm-l6)")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/defaults-<cpu>.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.train, args.valid, args.epochs, args.model)))
        return
    rows = []
    for variant in args.variants:
        command = [sys.executable, __file__, "--child", variant, "--train", str(args.train), "--valid",
                   str(args.valid), "--model", args.model] + (["--epochs", str(args.epochs)] if args.epochs else [])
        with StolenTime() as stolen:
            done = subprocess.run(command, check=True, capture_output=True, text=True)
        rows.append({**json.loads(done.stdout.strip().splitlines()[-1]), "stolen_cpu_percent": stolen.percent})
        print(rows[-1], flush=True)
    from tfclf.runtime.cpu import describe

    cpu = describe()
    print_table(cpu, ["variant", "lr", "epochs run", "dev macro ROC-AUC", "dev macro-F1", "dev micro-F1",
                      "hamming loss", "train s"],
                [[r["variant"], f"{r['settings']['learning_rate']:g}", r["epochs_run"], f"{r['dev_macro_roc_auc']:.3f}",
                  f"{r['dev_macro_f1']:.3f}", f"{r['dev_micro_f1']:.3f}", f"{r['dev_hamming_loss']:.3f}",
                  r["train_seconds"]] for r in rows])
    save_json(args.out or RESULTS / f"defaults-{cpu_slug()}.json", {"cpu": cpu, "date": time.strftime("%Y-%m-%d"),
                                                        "train": args.train, "valid": args.valid, "rows": rows})


if __name__ == "__main__":
    main()
