"""One run on each engine and precision: how often each agrees with TensorFlow float32, and how fast
it predicts, on a held-out file.

    python benchmarks/engine_agreement.py RUN TEST.csv --calibration VALID.csv [--out NAME]
    # -> results/engine-agreement-NAME-CLASS.json

Rows: TensorFlow float32 (the reference), TensorFlow bf16 matmuls and OpenVINO bf16 (on CPUs
with AVX512-BF16 or AMX), OpenVINO float32, OpenVINO int8 (NNCF, calibrated on the first 300
texts of --calibration, the run's validation file: never the test file). Agreement is the share
of texts whose decided label is the reference's; the largest probability difference beside it.
Each configuration is loaded in this one process (a model's precision is its own); "texts/s"
is `predict_proba` over the whole file after the load, the conversion and quantization excluded.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from common import RESULTS, ROOT, cpu_slug, print_table, save_json


def rows_of(path: Path, run) -> list:
    """The file's texts (pairs as tuples) by the run's columns."""
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    config = run.config
    texts = frame[config.text_column].tolist()
    return list(zip(texts, frame[config.pair_column])) if config.pairs else texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("test", type=Path)
    parser.add_argument("--calibration", type=Path, required=True, help="texts for int8's ranges (validation)")
    parser.add_argument("--out", default=None, help="a name for the result file (default: the run folder's parent)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tfclf import TextClassifier
    from tfclf.runtime.cpu import describe
    from tfclf.runtime.precision import bfloat16_is_fast

    reference = TextClassifier.load(args.run, precision="float32")
    texts = rows_of(args.test, reference)
    calibration = rows_of(args.calibration, reference)[:300]
    bf16 = bfloat16_is_fast()
    configs = [("tensorflow", "float32"), *([("tensorflow", "matmul_bfloat16")] if bf16 else []),
               ("openvino", "float32"), *([("openvino", "matmul_bfloat16")] if bf16 else []), ("openvino", "int8")]
    found, expected = [], None
    for engine, precision in configs:
        start = time.perf_counter()
        clf = TextClassifier.load(args.run, precision=precision, engine=engine,
                                  calibration=calibration if precision == "int8" else None)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        probs = clf.predict_proba(texts)
        seconds = time.perf_counter() - start
        labels = np.asarray(clf.decide(probs), dtype=object)
        if expected is None:
            expected = (probs, labels)
        found.append({"engine": engine, "precision": precision, "load_s": round(load_s, 1),
                      "texts_per_s": round(len(texts) / seconds, 1),
                      "agreement": float(np.mean(labels == expected[1])),
                      "max_probability_difference": float(np.abs(probs - expected[0]).max())})
    cpu = describe()
    name = args.out or args.run.parent.name
    save_json(RESULTS / f"engine-agreement-{name}-{cpu_slug()}.json",
              {"cpu": cpu, "run": str(args.run), "test": str(args.test), "texts": len(texts),
               "calibration_texts": len(calibration), "rows": found,
               "command": "python benchmarks/engine_agreement.py " + " ".join(sys.argv[1:])})
    print_table(cpu, ["engine", "precision", "label agreement with TF float32", "largest probability difference",
                      "texts/s", "load s"],
                [[r["engine"], r["precision"], f"{100 * r['agreement']:.2f} %", f"{r['max_probability_difference']:.2g}",
                  r["texts_per_s"], r["load_s"]] for r in found])


if __name__ == "__main__":
    main()
