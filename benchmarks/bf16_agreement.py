"""bf16 inference against float32: how often the labels agree, how far the probabilities move.

    python benchmarks/accuracy.py trec                     # runs to check (or any run folders)
    python benchmarks/bf16_agreement.py --case trec benchmarks/.work/trec/run benchmarks/.work/trec/test.csv \
        --case bbc-news runs/bbc-news data/bbc/test.csv

For each case (a name, a run folder, a labelled CSV with `text` and `labels` columns):
  - SavedModel: the run exported twice, `--precision float32` and `--precision bfloat16` (bf16
    casts around the encoder's matmuls, in the graph), both predicting every text through
    serving_default. These casts run on any CPU (TensorFlow has bf16 MatMul kernels everywhere),
    so the agreement is measured on every CPU class; the speed means something only on CPUs
    with AVX512-BF16 or AMX.
  - Python (CPUs with AVX512-BF16 or AMX only): `TextClassifier.load(run, precision=...)` with
    float32 and with matmul_bfloat16 (the model built with bf16 matmuls, what `--precision auto` predicts with).
Labels agree when a text gets the same label (single-label) or the same set of labels
(multi-label, each at its tuned threshold). Accuracy (single-label) or macro-F1 (multi-label)
of each against the file's labels, to show what the disagreements cost. Prints a table and
writes benchmarks/results/bf16-agreement-<cpu>.json.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import RESULTS, ROOT, cpu_slug, print_table, save_json

WORK = ROOT / "benchmarks" / ".work" / "bf16"


def score(task: str, classes: list[str], predicted: list, truth: list[str], sep: str = ",") -> float:
    """Accuracy (single-label) or macro-F1 over the labels present (multi-label)."""
    if task != "multilabel":
        return float(np.mean([p == t for p, t in zip(predicted, truth)]))
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import MultiLabelBinarizer

    binarizer = MultiLabelBinarizer(classes=classes)
    y_true = binarizer.fit_transform([[x for x in str(t).split(sep) if x] for t in truth])
    y_pred = binarizer.transform(predicted)
    present = y_true.sum(0) > 0
    return float(f1_score(y_true[:, present], y_pred[:, present], average="macro", zero_division=0))


def compare(name: str, engine: str, task: str, classes: list[str], truth: list[str], runs: dict) -> dict:
    (p32, l32, s32), (p16, l16, s16) = runs["float32"], runs["bfloat16"]
    same = [sorted(a) == sorted(b) if task == "multilabel" else a == b for a, b in zip(l32, l16)]
    return {"case": name, "engine": engine, "texts": len(truth), "labels_identical": float(np.mean(same)),
            "texts_that_differ": int(len(same) - sum(same)),
            "max_probability_difference": float(np.abs(p32 - p16).max()),
            "mean_probability_difference": float(np.abs(p32 - p16).mean()),
            "score_float32": score(task, classes, l32, truth), "score_bfloat16": score(task, classes, l16, truth),
            "seconds_float32": s32, "seconds_bfloat16": s16}


def saved_models(name: str, run: Path, texts: list[str]) -> dict:
    from tfclf.cli import main
    from tfclf.serving.export import load_saved_model, saved_model_predictor

    out = {}
    for precision in ("float32", "bfloat16"):
        base = WORK / name / precision
        shutil.rmtree(base, ignore_errors=True)
        assert main(["export", "--run", str(run), "--out", str(base), "--precision", precision]) == 0
        predict = saved_model_predictor(load_saved_model(base / "1"))
        predict(texts[:64])  # the first call traces
        start = time.perf_counter()
        probabilities, labels = predict(texts)
        out[precision] = (probabilities, labels, round(time.perf_counter() - start, 2))
    return out


def python_api(run: Path, texts: list[str]) -> dict:
    from tfclf import TextClassifier

    out = {}
    for precision, asked in (("float32", "float32"), ("bfloat16", "matmul_bfloat16")):
        clf = TextClassifier.load(run, precision=asked)
        clf.predict_proba(texts[:64])
        start = time.perf_counter()
        probabilities = clf.predict_proba(texts)
        labels = clf.predict(texts)
        out[precision] = (probabilities, labels, round(time.perf_counter() - start, 2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", nargs=3, action="append", required=True, metavar=("NAME", "RUN", "DATA"))
    args = parser.parse_args()
    from tfclf.runtime.cpu import describe
    from tfclf.runtime.precision import cpu_has_bfloat16
    from tfclf.data.labels import LabelSpace
    from tfclf.storage.run_folder import load as load_run

    rows = []
    for name, run, data in args.case:
        frame = pd.read_csv(data, dtype=str, keep_default_na=False)
        texts, truth = frame["text"].tolist(), frame["labels"].tolist()
        _, config, labels, _ = load_run(Path(run))
        classes = [str(c) for c in LabelSpace.from_json(labels).classes]
        rows.append(compare(name, "SavedModel", config.task, classes, truth, saved_models(name, Path(run), texts)))
        print(rows[-1], flush=True)
        if cpu_has_bfloat16():
            rows.append(compare(name, "Python (bf16 matmuls in the graph)", config.task, classes, truth,
                                python_api(Path(run), texts)))
            print(rows[-1], flush=True)
    cpu = describe()
    print_table(cpu, ["case", "engine", "texts", "labels identical", "max / mean probability difference",
                      "score float32 → bf16", "seconds float32 / bf16"],
                [[r["case"], r["engine"], f"{r['texts']:,}",
                  f"{100 * r['labels_identical']:.2f} % ({r['texts_that_differ']} differ)",
                  f"{r['max_probability_difference']:.4f} / {r['mean_probability_difference']:.5f}",
                  f"{r['score_float32']:.4f} → {r['score_bfloat16']:.4f}",
                  f"{r['seconds_float32']} / {r['seconds_bfloat16']}"] for r in rows])
    save_json(RESULTS / f"bf16-agreement-{cpu_slug()}.json", {"cpu": cpu, "date": time.strftime("%Y-%m-%d"),
                                                               "rows": rows})


if __name__ == "__main__":
    main()
