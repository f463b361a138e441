"""Long documents on movie_reviews: truncation strategies against the hierarchical model.

    python benchmarks/long_documents.py [--max-length 256] [--epochs 2]

2,000 reviews (Pang & Lee polarity v2.0, ../shared/data/movie_reviews) split 80/20 with a
fixed seed, stratified. Every variant fine-tunes the same checkpoint with the same
max length, epochs, batch size and learning rate, through the same CLI a user runs:
head-only, tail-only, head+tail truncation, and the hierarchical model (chunks of
max-length tokens) with an LSTM over the chunk embeddings. The mean, max and attention
variants train stage 2 again on that run's fine-tuned stage 1 (TextClassifier.fit_documents),
so they differ from the LSTM only in stage 2. Writes benchmarks/results/long-documents.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WORK = ROOT / "benchmarks" / ".work" / "movie_reviews"
RESULTS = ROOT / "benchmarks" / "results"


def prepare(limit: int | None) -> tuple[Path, Path]:
    """movie_reviews.zip -> train.csv / test.csv, a seeded stratified 80/20 split."""
    from sklearn.model_selection import train_test_split

    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    with zipfile.ZipFile(SHARED / "movie_reviews" / "movie_reviews.zip") as archive:
        for name in sorted(archive.namelist()):
            parts = name.split("/")
            if name.endswith(".txt") and len(parts) >= 3 and parts[-2] in ("pos", "neg"):
                rows.append({"text": archive.read(name).decode("utf-8", "replace"), "labels": parts[-2],
                             "file": name})
    frame = pd.DataFrame(rows)
    if limit:
        frame = frame.groupby("labels").head(limit // 2)
    train, test = train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["labels"])
    train[["text", "labels"]].to_csv(WORK / "train.csv", index=False)
    test[["text", "labels"]].to_csv(WORK / "test.csv", index=False)
    return WORK / "train.csv", WORK / "test.csv"


def tfclf(*args: str, capture: bool = False) -> str:
    done = subprocess.run([sys.executable, "-m", "tfclf", *args], check=True, text=True,
                          capture_output=capture)
    return done.stdout


def train_variant(name: str, train: Path, test: Path, common: list[str], extra: list[str]) -> dict:
    run_dir = WORK / f"run-{name}"
    start = time.perf_counter()
    tfclf("train", "--train", str(train), "--valid-fraction", "0.1", "--task", "binary", *common, *extra,
          "--out", str(run_dir))
    seconds = time.perf_counter() - start
    result = json.loads(tfclf("evaluate", "--run", str(run_dir), "--data", str(test), capture=True))
    return {"variant": name, "accuracy": result["accuracy"], "macro_f1": result["macro_f1"],
            "train_seconds": round(seconds, 1), "command": " ".join(["tfclf train", *common, *extra])}


def refit_stage2(base: str, pooling: str, train: Path, test: Path) -> dict:
    """Stage 2 again with another pooling, on the fine-tuned stage 1 of the `base` run."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tfclf import TextClassifier

    clf = TextClassifier.load(WORK / f"run-{base}")
    start = time.perf_counter()
    clf.fit_documents(str(train), doc_pooling=pooling, run_dir=WORK / f"run-hierarchical-{pooling}", verbose=0)
    seconds = time.perf_counter() - start
    result = clf.evaluate(str(test))
    return {"variant": f"hierarchical-{pooling}", "accuracy": result["accuracy"], "macro_f1": result["macro_f1"],
            "train_seconds": round(seconds, 1), "stage1_from": f"hierarchical-{base.split('-')[-1]}",
            "command": f"TextClassifier.load(run).fit_documents(train, doc_pooling={pooling!r})"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--max-chunks", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--limit", type=int, help="only this many reviews (a smoke run)")
    parser.add_argument("--only", nargs="*", help="variants to run (default: all)")
    args = parser.parse_args()
    train, test = prepare(args.limit)
    common = ["--model", args.model, "--max-length", str(args.max_length), "--epochs", str(args.epochs),
              "--batch-size", str(args.batch_size), "--lr", str(args.lr)]
    variants = {"head": ["--truncation", "head"], "tail": ["--truncation", "tail"],
                "head+tail": ["--truncation", "head+tail"],
                "hierarchical-lstm": ["--long-doc", "hierarchical", "--max-chunks", str(args.max_chunks),
                                      "--doc-pooling", "lstm"]}
    out = RESULTS / ("long-documents.json" if not args.limit else "long-documents-smoke.json")
    found = json.loads(out.read_text())["results"] if out.exists() and args.only else []
    found = [r for r in found if not args.only or r["variant"] not in args.only]

    def record(row: dict) -> None:
        found.append(row)
        print(f"{row['variant']:<24} accuracy {row['accuracy']:.4f}  {row['train_seconds']:>7.0f} s", flush=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "data": "movie_reviews (Pang & Lee v2.0), seeded stratified 80/20 split",
            "train_docs": int(len(pd.read_csv(train))), "test_docs": int(len(pd.read_csv(test))),
            "settings": {k: v for k, v in vars(args).items() if k != "only"}, "results": found,
            "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
                       f"Python {platform.python_version()}"}, indent=2) + "\n")

    for name, extra in variants.items():
        if not args.only or name in args.only:
            record(train_variant(name, train, test, common, extra))
    for pooling in ("mean", "max", "attention"):
        if not args.only or f"hierarchical-{pooling}" in args.only:
            record(refit_stage2("hierarchical-lstm", pooling, train, test))
    print(f"\n{'variant':<24} {'accuracy':>8} {'train s':>8}")
    for row in found:
        print(f"{row['variant']:<24} {row['accuracy']:>8.4f} {row['train_seconds']:>8.0f}")


if __name__ == "__main__":
    main()
