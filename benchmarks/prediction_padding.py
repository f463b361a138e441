"""Prediction padding: each length-sorted batch padded to exactly its longest text, or rounded up to 8.

    python benchmarks/prediction_padding.py            # 2 rounds, the variants alternating
    python benchmarks/prediction_padding.py --rounds 3

`predict_proba` over the throughput benchmark's 4,096 GoEmotions comments (MiniLM-L6, 28
sigmoid outputs, batch 32, max length 128), each variant in a fresh process, the variants
alternating so that a slow spell of a shared machine hits both. A process builds the model
(one training step on 32 texts), then times two passes over the 4,096: the first traces the
prediction function and pays oneDNN's set-up for each new batch width, the second reuses
both. Prints a table, writes benchmarks/results/prediction-padding.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from common import RESULTS, StolenTime, cpu_line, json_from_fresh_process, save_json

VARIANTS = {"exact": False, "round to 8": True}  # sorted_batches(xla=...): True rounds widths up to 8


def passes(variant: str, n: int) -> dict:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import numpy as np

    from throughput import goemotions_sample
    from tfclf import TextClassifier
    from tfclf.serving import predictor
    from tfclf.text.sequences import token_ids

    texts, targets, names = goemotions_sample(n, seed=0)
    labels = [[names[j] for j in np.flatnonzero(row)] for row in targets]
    clf = TextClassifier.from_pretrained("minilm-l6", task="multilabel", epochs=1, batch_size=32, max_length=128,
                                         seed=0, precision="float32")
    clf.fit(texts[:32], labels[:32], verbose=0)  # builds the model; prediction is traced in the first pass
    rounded = VARIANTS[variant]
    batches = predictor.sorted_batches  # the padding alone changes: the model runs without XLA in both
    predictor.sorted_batches = lambda ids, size, pad_id, xla=False: batches(ids, size, pad_id, rounded)
    widths = {b["input_ids"].shape[1] for _, b in batches(token_ids(clf.tokenizer, texts), 32, 0, rounded)}
    seconds = []
    with StolenTime() as stolen:
        for _ in range(2):
            start = time.perf_counter()
            clf.predict_proba(texts, batch_size=32)
            seconds.append(round(time.perf_counter() - start, 2))
    return {"variant": variant, "first_pass_s": seconds[0], "second_pass_s": seconds[1], "widths": len(widths),
            "stolen_cpu_percent": stolen.percent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(passes(args.child, args.samples)))
        return
    rows = []
    for round_ in range(args.rounds):
        for variant in VARIANTS:
            found = json_from_fresh_process(Path(__file__), "--child", variant, "--samples", str(args.samples))
            rows.append({"round": round_ + 1, **found})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    from tfclf.runtime.cpu import describe

    cpu = describe()
    save_json(RESULTS / "prediction-padding.json",
              {"samples": args.samples, "batch_size": 32, "cpu": cpu, "rows": rows})
    print(cpu_line(cpu))
    print(f"{'round':<7}{'padding':<12}{'widths':>8}{'first pass s':>14}{'second pass s':>15}{'stolen CPU %':>14}")
    for r in rows:
        print(f"{r['round']:<7}{r['variant']:<12}{r['widths']:>8}{r['first_pass_s']:>14.2f}{r['second_pass_s']:>15.2f}"
              f"{str(r['stolen_cpu_percent']):>14}")


if __name__ == "__main__":
    main()
