"""Training and prediction speed of the encoder families' real checkpoints, side by side on this CPU:
MiniLM-L6 (BERT, 384 wide, 6 layers) and MPNet-base (768 wide, 12 layers).

    tfclf fetch mpnet-base
    python benchmarks/family_speed.py                       # -> results/family-speed-CLASS.json
    python benchmarks/family_speed.py --models minilm-l6 --texts 64 --train 64   # a smoke run
    python benchmarks/family_speed.py --models minilm-l6 --engines tensorflow openvino   # issue 45

Each (model, precision) runs in a fresh process: one epoch of `fit` on a seeded sample of
GoEmotions training comments (first label as a 28-way single-label task, batch 32, max length
64, no validation), then `predict_proba` over other comments of the same sample size, batch 64.
Wall-clock, tracing and checkpoint loading included (the model build is timed apart). Precisions:
float32, and on CPUs with AVX512-BF16 or AMX also `auto` (bf16 matmuls, runtime/precision.py).
Texts come from ../shared/data/goemotions where present, else generated sentences (said in the JSON).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import RESULTS, ROOT, StolenTime, cpu_slug, json_from_fresh_process, print_table, save_json

GOEMOTIONS = ROOT.parent / "shared" / "data" / "goemotions" / "train.tsv"


def texts(n: int, seed: int) -> tuple[list[str], list[str], str]:
    """`n` comments and their first labels (a seeded sample), or generated ones where the data is absent."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if GOEMOTIONS.is_file():
        rows = [line.split("\t") for line in GOEMOTIONS.read_text("utf-8").splitlines()]
        picked = [rows[i] for i in rng.permutation(len(rows))[:n]]
        return [r[0] for r in picked], [r[1].split(",")[0] for r in picked], "goemotions train (seeded sample)"
    words = ["the", "game", "was", "really", "great", "awful", "vote", "phone", "day", "story"]
    found = [" ".join(rng.choice(words, size=rng.integers(4, 30))) for _ in range(n)]
    return found, [t.split()[0] for t in found], "generated sentences (no ../shared/data)"


def child(model: str, precision: str, n_train: int, n_predict: int, engines: list[str]) -> dict:
    """One measurement, in this (fresh) process."""
    import tempfile

    sys.path.insert(0, str(ROOT))
    from tfclf import TextClassifier

    train_x, train_y, source = texts(n_train, 0)
    predict_x, _, _ = texts(n_train + n_predict, 0)
    predict_x = predict_x[n_train:]
    start = time.perf_counter()
    clf = TextClassifier.from_pretrained(model, task="multiclass", epochs=1, batch_size=32, max_length=64,
                                         valid_fraction=0.0, precision=precision)
    built = time.perf_counter() - start
    with StolenTime() as stolen:
        start = time.perf_counter()
        clf.fit(train_x, train_y, verbose=0)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        clf.predict_proba(predict_x, batch_size=64)
        predict_s = time.perf_counter() - start
    by_engine = {}
    with tempfile.TemporaryDirectory() as folder:  # each engine on the saved run, as TextClassifier.load gives it
        clf.save(Path(folder) / "run")
        for engine in engines:
            start = time.perf_counter()
            loaded = TextClassifier.load(Path(folder) / "run", precision=clf.prediction_precision, engine=engine)
            load_s = time.perf_counter() - start
            start = time.perf_counter()
            loaded.predict_proba(predict_x, batch_size=64)
            by_engine[engine] = {"load_s": round(load_s, 2),
                                 "predict_per_s": round(len(predict_x) / (time.perf_counter() - start), 1)}
    return {"engines": by_engine, "model": model, "precision": precision, "predicts_in": clf.prediction_precision,
            "hidden": clf.backbone_config.hidden_size, "layers": clf.backbone_config.num_layers,
            "train_texts": n_train, "predict_texts": len(predict_x), "texts": source, "checkpoint_s": round(built, 2),
            "train_s": round(train_s, 2), "train_per_s": round(n_train / train_s, 1),
            "predict_s": round(predict_s, 2), "predict_per_s": round(len(predict_x) / predict_s, 1),
            "stolen_cpu_percent": stolen.percent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["minilm-l6", "mpnet-base"])
    parser.add_argument("--train", type=int, default=1024, help="training texts (one epoch)")
    parser.add_argument("--texts", type=int, default=2048, help="texts to predict")
    parser.add_argument("--engines", nargs="+", default=["tensorflow"], help="also predict on these engines "
                        "(tensorflow, openvino), each from the saved run")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # internal: model precision
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.train, args.texts, args.engines)))
        return
    sys.path.insert(0, str(ROOT))
    from tfclf.runtime.cpu import describe
    from tfclf.runtime.precision import bfloat16_is_fast

    precisions = ["float32"] + (["auto"] if bfloat16_is_fast() else [])
    rows = [json_from_fresh_process(Path(__file__), "--child", model, precision, "--train", str(args.train),
                                    "--texts", str(args.texts), "--engines", *args.engines, quiet=True)
            for model in args.models for precision in precisions]
    cpu = describe()
    result = {"cpu": cpu, "command": "python benchmarks/family_speed.py " + " ".join(sys.argv[1:]), "rows": rows}
    save_json(args.out or RESULTS / f"family-speed-{cpu_slug()}.json", result)
    print_table(cpu, ["model", "width x layers", "precision (runs in)", "train texts/s", "predict texts/s",
                      *(f"predict texts/s, {e} (load s)" for e in args.engines), "stolen CPU %"],
                [[r["model"], f"{r['hidden']} x {r['layers']}", f"{r['precision']} ({r['predicts_in']})",
                  r["train_per_s"], r["predict_per_s"],
                  *(f"{r['engines'][e]['predict_per_s']} ({r['engines'][e]['load_s']})" for e in args.engines),
                  r["stolen_cpu_percent"]] for r in rows])


if __name__ == "__main__":
    main()
