"""Seconds per explained text: integrated gradients on MiniLM-L6 over 128-token texts.

    python benchmarks/attributions.py      # prints a table, writes benchmarks/results/attributions.json

A MiniLM-L6 binary classifier is fine-tuned for one epoch on 400 movie reviews
(../shared/data/movie_reviews, read at --max-length 128: every review fills all 128 tokens),
then `TextClassifier.explain` runs on 20 other reviews, one at a time as `tfclf explain`
does, at several starting interval counts (while a text's completeness gap is over 5 % its
intervals are doubled, and that time counts). The time per gradient evaluation does not
depend on how well the model is trained, but how many evaluations a text needs does: a
label whose logit barely moves from the baseline needs a finer path for a 5 % gap
(`--epochs` trains longer).
The first text's call (tracing the gradient function) is timed apart.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, cpu_line, save_json  # noqa: E402

REVIEWS = ROOT.parent / "shared" / "data" / "movie_reviews" / "movie_reviews.zip"


def reviews(n: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(REVIEWS) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".txt") and n.split("/")[-2] in ("pos", "neg"))
        chosen = [names[i] for i in rng.permutation(len(names))[:n]]
        return [archive.read(n).decode("utf-8", "replace") for n in chosen], [n.split("/")[-2] for n in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--texts", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs before explaining")
    parser.add_argument("--train-texts", type=int, default=400, help="reviews to fine-tune on")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: tfclf's)")
    args = parser.parse_args()

    from tfclf import TextClassifier
    from tfclf.evaluation.attributions import DEFAULT_STEPS
    from tfclf.text.sequences import token_ids
    from tfclf.runtime.cpu import describe

    n = args.train_texts
    texts, labels = reviews(n + args.texts)
    clf = TextClassifier.from_pretrained("minilm-l6", task="binary", epochs=args.epochs, max_length=128, batch_size=32,
                                         **({"learning_rate": args.lr} if args.lr else {}))
    clf.fit(texts[:n], labels[:n], verbose=0)
    explained = texts[n:]
    held_out = float(np.mean(np.array(clf.predict(explained)) == np.array(labels[n:])))
    lengths = [len(ids) for ids in token_ids(clf.tokenizer, explained)]
    start = time.perf_counter()
    clf.explain(explained[:1], steps=args.steps[0])
    first = time.perf_counter() - start
    rows = []
    for steps in args.steps:
        clf.explain(explained[:1], steps=steps)  # a new step count traces nothing new; warm anyway
        seconds, gaps, redone, evaluations, moved = [], [], 0, [], []
        for text in explained:
            start = time.perf_counter()
            (result,) = clf.explain([text], steps=steps)
            seconds.append(time.perf_counter() - start)
            gaps.append(result["attributions"][0].completeness_gap)
            redone += result["attributions"][0].steps > steps
            evaluations.append(result["attributions"][0].steps + 1)
            moved.append(abs(result["attributions"][0].logit - result["attributions"][0].baseline_logit))
        rows.append({"steps": steps, "default": steps == DEFAULT_STEPS, "seconds_per_text": round(float(np.mean(seconds)), 3),
                     "seconds_max": round(float(np.max(seconds)), 3), "gap_median": round(float(np.median(gaps)), 4),
                     "gap_max": round(float(np.max(gaps)), 4), "texts_refined": int(redone),
                     "evaluations_mean": round(float(np.mean(evaluations)), 1),
                     "logit_difference_median": round(float(np.median(moved)), 4)})
    cpu = describe()
    result = {"cpu": cpu, "model": "minilm-l6", "epochs": args.epochs, "train_texts": n, "learning_rate": clf.config.learning_rate,
              "accuracy_on_explained": held_out, "tokens_per_text": sorted(set(lengths)), "texts": len(explained),
              "first_call_seconds": round(first, 2), "rows": rows, "command": " ".join(["python", "benchmarks/attributions.py", *sys.argv[1:]])}
    print(cpu_line(cpu))
    print(f"{len(explained)} movie reviews of {sorted(set(lengths))} tokens; first call (tracing) {first:.1f} s")
    print(f"{'steps':>6} {'s/text':>8} {'max s':>7} {'gap median':>11} {'gap max':>8} {'refined':>8} {'evals':>6}")
    for row in rows:
        print(f"{row['steps']:>6}{'*' if row['default'] else ' '} {row['seconds_per_text']:>7.2f} "
              f"{row['seconds_max']:>7.2f} {100 * row['gap_median']:>10.2f}% {100 * row['gap_max']:>7.2f}% "
              f"{row['texts_refined']:>8} {row['evaluations_mean']:>6}")
    print(f"median |logit - baseline logit|: {rows[0]['logit_difference_median']}; "
          f"accuracy on the explained reviews {held_out:.2f}")
    default = args.epochs == 1 and n == 400 and args.lr is None
    save_json(RESULTS / ("attributions.json" if default else f"attributions-{n}-texts-{args.epochs}-epochs.json"), result)


if __name__ == "__main__":
    main()
