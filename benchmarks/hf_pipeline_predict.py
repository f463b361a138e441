"""The Hugging Face peer of `tfclf predict --run RUN --data FILE --out OUT`, as a user would write
it: a `pipeline("text-classification")` over a CSV's `text` column, batch 32, the labels decided and
written with each label's probability. benchmarks/throughput.py times this whole process (Python
start, imports, model load, prediction, the output file written) beside `tfclf predict`'s.

    python benchmarks/hf_pipeline_predict.py HF_FOLDER IN.csv OUT.csv [--bf16]

HF_FOLDER is a Hugging Face model folder (throughput.py writes one with `tfclf export --format
huggingface` of the run `tfclf predict` reads, so both predict with the same weights). `--bf16` runs
the pipeline under `torch.autocast("cpu", dtype=torch.bfloat16)`: the matmuls in bf16, the weights
kept float32. Multi-label models decide each label at its threshold (`tfclf_thresholds` in the
folder's config.json, 0.5 without it), single-label ones take the most probable class.
"""
import argparse
import contextlib

import pandas as pd
import torch
from transformers import pipeline

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("model")
parser.add_argument("data")
parser.add_argument("out")
parser.add_argument("--bf16", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16)")
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--max-length", type=int, default=128)
args = parser.parse_args()

texts = pd.read_csv(args.data, dtype=str, keep_default_na=False)["text"].tolist()
classify = pipeline("text-classification", model=args.model, device="cpu", top_k=None)
config = classify.model.config
names = [config.id2label[i] for i in range(config.num_labels)]
with torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext():
    found = classify(texts, batch_size=args.batch_size, truncation=True, max_length=args.max_length)
probs = pd.DataFrame([{d["label"]: d["score"] for d in row} for row in found], columns=names)
if config.problem_type == "multi_label_classification":
    cut = getattr(config, "tfclf_thresholds", None) or {}
    labels = [",".join(n for n in names if row[n] >= cut.get(n, 0.5)) for _, row in probs.iterrows()]
else:
    labels = probs.idxmax(axis=1).tolist()
pd.concat([pd.DataFrame({"text": texts, "labels": labels}), probs.add_prefix("p_")], axis=1).to_csv(args.out,
                                                                                                     index=False)
