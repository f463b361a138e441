"""Latency and throughput of an exported SavedModel beside the PyTorch Hugging Face pipeline.

    python benchmarks/serving_latency.py --saved-model saved_models/bbc-news/1 --data data/bbc/test.csv
    python benchmarks/serving_latency.py --saved-model saved_models/bbc-news/1 saved_models/bbc-news-bf16/1 \
        --data data/bbc/test.csv        # a float32 and a `tfclf export --precision bfloat16` export side by side
    python benchmarks/serving_latency.py --saved-model saved_models/bbc-news/1 \
        --openvino saved_models/bbc-news-ov/1 --data data/bbc/test.csv   # `tfclf export --format openvino` too

Both run in this one process on the same texts and the same checkpoint architecture (the
pipeline gets a sequence-classification head of the same size; speed does not depend on the
head's weights), truncating at the run's max length. Batch-1 latency p50/p99 over every
text, then batch-32 throughput over all texts. The PyTorch pipeline needs torch and transformers
(the `bench` extra); without them the SavedModels are measured alone. Writes
benchmarks/results/serving-latency.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def measure(predict, texts: list[str], batch: int, repeats: int = 1) -> list[float]:
    times = []
    for _ in range(repeats):
        for start in range(0, len(texts), batch):
            t0 = time.perf_counter()
            predict(texts[start:start + batch])
            times.append(time.perf_counter() - t0)
    return times


def summary(name: str, single: list[float], batched: list[float], n: int) -> dict:
    return {"system": name, "batch1_p50_ms": 1000 * float(np.percentile(single, 50)),
            "batch1_p99_ms": 1000 * float(np.percentile(single, 99)),
            "batch32_texts_per_s": n / float(np.sum(batched))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saved-model", required=True, nargs="+", help="one or more exported version folders")
    parser.add_argument("--openvino", nargs="*", default=[], help="version folders of `tfclf export --format "
                        "openvino`, compiled in the precision each was exported in")
    parser.add_argument("--data", required=True, help="CSV with a text column")
    parser.add_argument("--model", default="minilm-l6", help="checkpoint for the PyTorch pipeline")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--texts", type=int, default=200)
    args = parser.parse_args()
    texts = pd.read_csv(args.data)["text"].astype(str).tolist()[:args.texts]

    import tensorflow as tf

    from tfclf.runtime.cpu import describe
    from tfclf.serving.export import load_saved_model

    systems = {}
    for folder in args.saved_model:
        serve = load_saved_model(folder).signatures["serving_default"]
        name = f"tfclf SavedModel {Path(folder).parent.name}/{Path(folder).name}"
        systems[name] = lambda batch, serve=serve: serve(text=tf.constant(batch))["probabilities"].numpy()
    for folder in args.openvino:
        from tfclf.serving.openvino_export import compile_export

        compiled = compile_export(folder)
        hint = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        name = f"tfclf OpenVINO {Path(folder).parent.name}/{Path(folder).name} ({hint})"
        systems[name] = lambda batch, c=compiled: c({"text": np.array(batch)})["probabilities"]
    classes = len(load_saved_model(args.saved_model[0]).class_names.numpy())
    try:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
    except ImportError:
        torch = None
        print("PyTorch pipeline skipped: torch and transformers are not installed (pip install -e '.[bench]')")
    if torch is not None:
        from tfclf.models.backbones import resolve_checkpoint

        path = str(resolve_checkpoint(args.model))
        hf = pipeline("text-classification", model=AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=classes), tokenizer=AutoTokenizer.from_pretrained(path), device=-1, top_k=None)
        systems["PyTorch HF pipeline"] = lambda batch: hf(batch, truncation=True, max_length=args.max_length,
                                                          batch_size=len(batch))
        torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))

    for warm in systems.values():  # first calls compile and allocate
        warm(texts[:32])
        warm(texts[:1])
    rows = []
    # interleaved: batch-1 of each, then batch-32 of each, so both see the same machine state
    single = {name: measure(predict, texts, 1) for name, predict in systems.items()}
    batched = {name: measure(predict, texts, 32) for name, predict in systems.items()}
    for name in single:
        rows.append(summary(name, single[name], batched[name], len(texts)))
    result = {"texts": len(texts), "max_length": args.max_length, "saved_model": args.saved_model,
              "openvino": args.openvino,
              "torch": torch.__version__ if torch else None, "tensorflow": tf.__version__,
              "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
              "cpu": describe(), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serving-latency.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"CPU: {describe()}")
    print(f"{'system':<44} {'b1 p50 ms':>10} {'b1 p99 ms':>10} {'b32 texts/s':>12}")
    for r in rows:
        print(f"{r['system']:<44} {r['batch1_p50_ms']:>10.1f} {r['batch1_p99_ms']:>10.1f} "
              f"{r['batch32_texts_per_s']:>12.1f}")


if __name__ == "__main__":
    main()
