"""One run on each engine and precision: how often each agrees with TensorFlow float32, and how fast
it predicts, on a held-out file.

    python benchmarks/engine_agreement.py RUN TEST.csv --calibration VALID.csv [--out NAME]
    # -> results/engine-agreement-NAME-CLASS.json
    python benchmarks/engine_agreement.py RUN TEST.csv --calibration TRAIN.csv --calibration-split
    # a run trained with --valid-fraction: its own validation split of TRAIN.csv, carved again

Rows: TensorFlow float32 (the reference), TensorFlow bf16 matmuls and OpenVINO bf16 (on CPUs
with AVX512-BF16 or AMX), OpenVINO float32, OpenVINO int8 (NNCF, calibrated on the first 300
texts of --calibration, the run's validation file: never the test file; with --calibration-split,
--calibration is the run's training file and the validation texts are the seeded valid_fraction
split the fit held out, made again with the run's seed by tfclf's own train_valid_split). Where the
run kept its validation probabilities (predictions/valid.npz) and the calibration set has as many
rows, the run's probabilities on it (in its own default precision, as its fit predicted them) are
compared with them: a check that the calibration texts are the run's validation texts.
Agreement is the share of texts whose decided label (the set of labels, multi-label) is the
reference's; the largest probability difference beside it.
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


def validation_split(path: Path, run) -> list:
    """The texts a fit on `path` with the run's valid_fraction and seed held out for validation."""
    from tfclf.data.examples import PAIR_SEP
    from tfclf.data.inputs import examples, train_valid_split

    config = run.config
    if not 0 < config.valid_fraction < 1:
        raise SystemExit(f"{path}: the run has valid_fraction {config.valid_fraction}, no split to carve again")
    _, valid = train_valid_split(examples(path, None, config), config.valid_fraction, config.seed)
    return [tuple(t.split(PAIR_SEP, 1)) for t in valid.texts] if config.pairs else valid.texts


def validation_check(run_dir: Path, rows: list) -> float | None:
    """The largest difference between the run's probabilities on `rows`, in the precision it
    predicts in by default (what its fit predicted validation with), and the ones it kept for its
    validation set; None where it kept none of that size."""
    from tfclf import TextClassifier

    kept = run_dir / "predictions" / "valid.npz"
    if not kept.is_file():
        return None
    stored = np.load(kept)["probabilities"]
    if len(stored) != len(rows):
        return None
    probs = TextClassifier.load(run_dir).predict_proba(rows)
    stored = stored.reshape(len(rows), -1)
    return float(np.abs(probs[:, -stored.shape[1]:] - stored).max())


def same_labels(a, b) -> bool:
    """One text's decisions: a label, or a list of labels (multi-label), in the run's order."""
    return list(a) == list(b) if isinstance(a, (list, tuple)) else a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("test", type=Path)
    parser.add_argument("--calibration", type=Path, required=True, help="texts for int8's ranges (validation)")
    parser.add_argument("--calibration-split", action="store_true",
                        help="--calibration is the run's training file: calibrate on the validation split it held out")
    parser.add_argument("--out", default=None, help="a name for the result file (default: the run folder's parent)")
    parser.add_argument("--note", help="recorded in the result (where the run came from, how busy the machine was)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tfclf import TextClassifier
    from tfclf.runtime.cpu import describe
    from tfclf.runtime.precision import bfloat16_is_fast

    reference = TextClassifier.load(args.run, precision="float32")
    texts = rows_of(args.test, reference)
    every = validation_split(args.calibration, reference) if args.calibration_split else \
        rows_of(args.calibration, reference)
    if set(map(str, every)) & set(map(str, texts)):
        print(f"warning: {len(set(map(str, every)) & set(map(str, texts)))} calibration texts are also test texts",
              file=sys.stderr)
    check = validation_check(args.run, every)
    calibration = every[:300]
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
        labels = clf.decide(probs)
        if expected is None:
            expected = (probs, labels)
        found.append({"engine": engine, "precision": precision, "load_s": round(load_s, 1),
                      "texts_per_s": round(len(texts) / seconds, 1),
                      "agreement": float(np.mean([same_labels(a, b) for a, b in zip(labels, expected[1])])),
                      "max_probability_difference": float(np.abs(probs - expected[0]).max())})
    cpu = describe()
    name = args.out or args.run.parent.name
    save_json(RESULTS / f"engine-agreement-{name}-{cpu_slug()}.json",
              {"cpu": cpu, "run": str(args.run), "test": str(args.test), "texts": len(texts),
               "calibration": str(args.calibration) + (" (the run's validation split of it)"
                                                       if args.calibration_split else ""),
               "calibration_texts": len(calibration), "validation_probabilities_max_difference": check,
               "task": reference.config.task, "note": args.note, "rows": found,
               "command": "python benchmarks/engine_agreement.py " + " ".join(sys.argv[1:])})
    print_table(cpu, ["engine", "precision", "label agreement with TF float32", "largest probability difference",
                      "texts/s", "load s"],
                [[r["engine"], r["precision"], f"{100 * r['agreement']:.2f} %",
                  f"{r['max_probability_difference']:.2g}", r["texts_per_s"], r["load_s"]] for r in found])
    if check is not None:
        print(f"calibration texts = the run's validation texts: probabilities within {check:.2g} of valid.npz")


if __name__ == "__main__":
    main()
