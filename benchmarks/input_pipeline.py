"""The training input pipeline alone, no model: samples per second on GoEmotions train.

    python benchmarks/input_pipeline.py     # prints a table, writes benchmarks/results/input-pipeline.json

The 43,410 training comments are tokenized once (timed on its own); then `training_dataset`
(tf.data: length-grouped, shuffled, padded, prefetched) is consumed for a few epochs at
batch 32 and 128, inside the graph (`Dataset.reduce`, as `model.fit` reads its batches), and
each epoch's samples/s is recorded. Today's pipeline is compared with
the Python generator it replaced, rebuilt here from the same numpy padding, in the same run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, cpu_line, save_json  # noqa: E402
from tfclf.runtime.cpu import describe  # noqa: E402
from throughput import SHARED  # noqa: E402


def goemotions_train() -> tuple[list[str], np.ndarray]:
    import pandas as pd

    names = (SHARED / "labels.txt").read_text(encoding="utf-8").split()
    frame = pd.read_csv(SHARED / "train.tsv", sep="\t", header=None, quoting=3, names=["text", "ids", "id"],
                        dtype=str, keep_default_na=False)
    targets = np.zeros((len(frame), len(names)), np.float32)
    for row, ids in enumerate(frame["ids"]):
        targets[row, [int(i) for i in ids.split(",")]] = 1.0
    return frame["text"].tolist(), targets


def generator_dataset(ids, targets, batch_size: int, pad_id: int, seed: int):
    """The pipeline tfclf had before: a Python generator padding each batch in numpy."""
    import tensorflow as tf

    from tfclf.text.sequences import pad_batch

    lengths = np.array([len(r) for r in ids])
    rng = np.random.default_rng(seed)
    window = batch_size * 50

    def batches():
        order = rng.permutation(len(lengths))
        found = []
        for start in range(0, len(order), window):
            part = order[start:start + window]
            part = part[np.argsort(lengths[part], kind="stable")]
            found.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
        for i in rng.permutation(len(found)):
            yield pad_batch([ids[j] for j in found[i]], pad_id), targets[found[i]]

    spec = ({"input_ids": tf.TensorSpec((None, None), tf.int32), "attention_mask": tf.TensorSpec((None, None), tf.int32)},
            tf.TensorSpec((None, targets.shape[1]), tf.float32))
    return tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(tf.data.AUTOTUNE)


def epoch_rates(dataset, n: int, epochs: int) -> list[float]:
    """Samples/s of each epoch, consumed inside the graph as model.fit consumes it (iterating in
    Python would add the cost of making Python objects of every batch)."""
    import tensorflow as tf

    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        seen = int(dataset.reduce(tf.constant(0), lambda count, batch: count + tf.shape(batch[1])[0]))
        assert seen == n, (seen, n)
        rates.append(n / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "input-pipeline.json")
    args = parser.parse_args()

    import tensorflow as tf

    from tfclf.models.backbones import resolve_checkpoint
    from tfclf.text.sequences import token_ids
    from tfclf.text.wordpiece import TokenizerSpec, WordPieceTokenizer
    from tfclf.training import pipeline

    texts, targets = goemotions_train()
    tokenizer = WordPieceTokenizer(TokenizerSpec.from_directory(resolve_checkpoint("minilm-l6")), 128)
    start = time.perf_counter()
    ids = token_ids(tokenizer, texts)
    tokenize_s = time.perf_counter() - start
    rows = []
    for batch_size in (32, 128):
        for name, make in (("tf.data (tfclf)", pipeline.training_dataset), ("Python generator (before)", generator_dataset)):
            rates = epoch_rates(make(ids, targets, batch_size, tokenizer.pad_id, 42), len(ids), args.epochs)
            rows.append({"pipeline": name, "batch_size": batch_size, "epochs": args.epochs,
                         "samples_per_s_per_epoch": [round(r) for r in rates],
                         "samples_per_s_best": round(max(rates)), "samples_per_s_median": round(float(np.median(rates)))})
            print(f"  {name:<28} batch {batch_size:>4}: {', '.join(f'{r:,.0f}' for r in rates)} samples/s",
                  file=sys.stderr, flush=True)
    result = {"texts": len(texts), "tokenize_seconds": round(tokenize_s, 2), "rows": rows, "cpu": describe(),
              "versions": {"tensorflow": tf.__version__}}
    save_json(args.out, result)
    print(f"\nGoEmotions train, {len(texts):,} comments; tokenizing took {tokenize_s:.1f} s. {cpu_line(describe())}")
    print(f"{'pipeline':<28}{'batch':>7}{'median samples/s':>18}{'best':>10}")
    for r in rows:
        print(f"{r['pipeline']:<28}{r['batch_size']:>7}{r['samples_per_s_median']:>18,}{r['samples_per_s_best']:>10,}")


if __name__ == "__main__":
    main()
