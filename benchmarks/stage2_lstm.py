"""Stage 2's LSTM on a CPU: tfclf's `lstm()` (the LSTM cell in Keras's generic RNN where no GPU
is visible) beside Keras's `LSTM` layer (which traces a cuDNN branch beside the CPU one into
every graph), the same document classifier otherwise, interleaved, in one process.

    python benchmarks/stage2_lstm.py [--docs 400] [--repeats 2]   # -> results/stage2-lstm-CLASS.json

Each row: building the document classifier, fitting it (Adam, batch 16, 5 epochs, validation each
epoch) on random chunk embeddings [docs, 4, 384] with random masks, and predicting them; then the
two models given the same weights, and their largest output difference.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, cpu_slug, print_table, save_json  # noqa: E402


def build(kind: str, hidden: int):
    import tf_keras as keras

    from tfclf.models import hierarchical

    keras.utils.set_random_seed(0)
    if kind == "tfclf":
        return hierarchical.build_document_classifier(hidden, 1, "lstm")
    real = hierarchical.lstm
    hierarchical.lstm = lambda units: keras.layers.LSTM(units, name="lstm")  # Keras's layer, as before
    try:
        return hierarchical.build_document_classifier(hidden, 1, "lstm")
    finally:
        hierarchical.lstm = real


def measure(kind: str, data: dict, targets: np.ndarray) -> tuple[dict, object]:
    import tf_keras as keras

    start = time.perf_counter()
    model = build(kind, data["chunk_embeddings"].shape[-1])
    built = time.perf_counter() - start
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True))
    start = time.perf_counter()
    model.fit(data, targets, batch_size=16, epochs=5, validation_data=(data, targets), verbose=0)
    fitted = time.perf_counter() - start
    start = time.perf_counter()
    model.predict(data, batch_size=64, verbose=0)
    predicted = time.perf_counter() - start
    return {"build_s": built, "fit_s": fitted, "predict_s": predicted}, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tfclf.runtime.cpu import describe

    rng = np.random.default_rng(0)
    mask = (np.arange(4) < rng.integers(1, 5, size=(args.docs, 1))).astype(np.int32)
    data = {"chunk_embeddings": rng.normal(size=(args.docs, 4, 384)).astype(np.float32), "chunk_mask": mask}
    targets = rng.integers(0, 2, size=(args.docs, 1)).astype(np.float32)
    runs, models = {"tfclf": [], "keras": []}, {}
    for _ in range(args.repeats):
        for kind in runs:
            figures, models[kind] = measure(kind, data, targets)
            runs[kind].append(figures)
    models["keras"].set_weights(models["tfclf"].get_weights())
    difference = float(np.abs(models["keras"].predict(data, verbose=0) - models["tfclf"].predict(data, verbose=0)).max())
    medians = {kind: {k: round(statistics.median(r[k] for r in rows), 2) for k in rows[0]} for kind, rows in runs.items()}
    cpu = describe()
    save_json(RESULTS / f"stage2-lstm-{cpu_slug()}.json",
              {"cpu": cpu, "docs": args.docs, "chunks": 4, "hidden": 384, "repeats": args.repeats, "medians": medians,
               "runs": runs, "max_output_difference_same_weights": difference,
               "command": "python benchmarks/stage2_lstm.py " + " ".join(sys.argv[1:])})
    print_table(cpu, ["stage 2 LSTM", "build s", "fit s (5 epochs)", "predict s"],
                [[kind, m["build_s"], m["fit_s"], m["predict_s"]] for kind, m in medians.items()])
    print(f"same weights: outputs within {difference:.2g}")


if __name__ == "__main__":
    main()
