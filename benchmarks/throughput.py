"""Training and inference throughput: tfclf beside the PyTorch recipe of the multi-label DistilBERT blog post.

    pip install torch==2.13.0              # the `bench` extra: a local CPU build, never a tfclf dependency
    python benchmarks/throughput.py        # prints a table, writes benchmarks/results/throughput-CLASS.json
    python benchmarks/throughput.py --repeats 2   # every system twice, interleaved (shared, noisy machines)

One process, the same 4,096 GoEmotions training comments (a seeded sample), the same
checkpoint (all-MiniLM-L6-v2), batch 32, 28 sigmoid outputs, and the same optimizer in every
system: AdamW (lr 1e-4, weight decay 0.01, no decay on biases and LayerNorm), linear warm-up
over 10 % of the steps then linear decay, gradients clipped to a global norm of 1.

Training, one epoch each:
  (a) tfclf: `TextClassifier.fit` (in-graph tokenization, length-grouped batches);
  (b) the blog recipe: a `Dataset` that tokenizes in `__getitem__` and pads every text to
      MAX_LEN, a shuffled `DataLoader`, [CLS] -> Dropout -> Linear, `BCEWithLogitsLoss`;
  (c) the same recipe with dynamic padding (each shuffled batch padded to its longest text).
tfclf runs in float32, and again with `--precision matmul_bfloat16` (matmuls in bf16
through oneDNN) on CPUs with AVX512-BF16 or AMX only. PyTorch runs the recipe as written, in float32.
Inference over the same texts: tfclf's `predict_proba` beside the Hugging Face
`pipeline("text-classification")` (batch 32), both truncating at MAX_LEN.

Every figure is wall-clock over the whole epoch or pass, tokenization, model building,
checkpoint loading and tf.function tracing included; the Python imports are not: each system
imports its framework and its BERT module (tfclf's `tfclf.models.layers`, transformers'
`modeling_bert`) before its clock starts (those imports take 3-9 s each here, and are not
training). tfclf trains on the whole sample (`valid_fraction=0`), as the recipes do. Each
system runs in a fresh process of its own, one after another (tfclf trains, then predicts
with the model it trained); `--repeats N` runs the whole sequence N times. Peak memory is
that process's resident set sampled every 10 ms during the run, and its increase over the
resident set at the start.
"Stolen CPU %" is the share of the machine's CPU time the hypervisor gave to other guests
during the run (/proc/stat): on a shared VM, runs with much of it are slower whatever the code.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, StolenTime, cpu_line, cpu_slug, json_from_fresh_process, save_json  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "goemotions"
SETTINGS = dict(samples=4096, batch_size=32, max_length=128, learning_rate=1e-4, weight_decay=0.01,
                warmup_fraction=0.1, clipnorm=1.0, seed=0)


class PeakMemory:
    """Resident set size of this process, sampled in a thread while the block runs."""

    def __enter__(self) -> "PeakMemory":
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def goemotions_sample(n: int, seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    names = (SHARED / "labels.txt").read_text(encoding="utf-8").split()
    frame = pd.read_csv(SHARED / "train.tsv", sep="\t", header=None, quoting=3, names=["text", "ids", "id"],
                        dtype=str, keep_default_na=False).sample(n=n, random_state=seed)
    targets = np.zeros((n, len(names)), np.float32)
    for row, ids in enumerate(frame["ids"]):
        targets[row, [int(i) for i in ids.split(",")]] = 1.0
    return frame["text"].tolist(), targets, names


# ------------------------------------------------------------------------------ (a) tfclf
def tfclf_train(texts: list[str], targets: np.ndarray, names: list[str], s: dict, precision: str):
    importlib.import_module("tfclf.models.layers")  # TensorFlow and the layers, before the clock: see the docstring

    from tfclf import TextClassifier

    labels = [[names[j] for j in np.flatnonzero(row)] for row in targets]
    clf = TextClassifier.from_pretrained("minilm-l6", task="multilabel", epochs=1, batch_size=s["batch_size"],
                                         max_length=s["max_length"], learning_rate=s["learning_rate"],
                                         weight_decay=s["weight_decay"], warmup_fraction=s["warmup_fraction"],
                                         clipnorm=s["clipnorm"], seed=s["seed"], precision=precision,
                                         valid_fraction=0.0)  # the whole sample, as the recipes train on
    start = time.perf_counter()
    clf.fit(texts, labels, verbose=0)
    return time.perf_counter() - start, clf


def tfclf_predict(clf, texts: list[str], s: dict) -> float:
    start = time.perf_counter()
    clf.predict_proba(texts, batch_size=s["batch_size"])
    return time.perf_counter() - start


# ------------------------------------------------------------------------------ (b), (c) PyTorch
def torch_train(texts: list[str], targets: np.ndarray, s: dict, dynamic: bool) -> float:
    """The blog recipe, one epoch; `dynamic` pads each batch to its longest text instead of MAX_LEN."""
    import torch
    importlib.import_module("transformers.models.bert.modeling_bert")  # before the clock: see the docstring
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    from tfclf.models.backbones import resolve_checkpoint

    path = str(resolve_checkpoint("minilm-l6"))
    torch.manual_seed(s["seed"])
    tokenizer = AutoTokenizer.from_pretrained(path)

    class CustomDataset(torch.utils.data.Dataset):
        def __len__(self):
            return len(texts)

        def __getitem__(self, index):
            # the tokenizer's __call__: transformers 5 has no encode_plus
            inputs = tokenizer(texts[index], None, add_special_tokens=True, max_length=s["max_length"],
                               truncation=True, padding=False if dynamic else "max_length")
            return {"ids": torch.tensor(inputs["input_ids"]), "mask": torch.tensor(inputs["attention_mask"]),
                    "targets": torch.tensor(targets[index])}

    def collate(rows):
        width = max(len(r["ids"]) for r in rows)
        pad = lambda key: torch.stack([torch.nn.functional.pad(r[key], (0, width - len(r[key]))) for r in rows])  # noqa: E731
        return {"ids": pad("ids"), "mask": pad("mask"), "targets": torch.stack([r["targets"] for r in rows])}

    class BERTClass(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = AutoModel.from_pretrained(path, add_pooling_layer=False)
            self.l2 = torch.nn.Dropout(0.1)
            self.l3 = torch.nn.Linear(self.l1.config.hidden_size, targets.shape[1])

        def forward(self, ids, mask):
            hidden_state = self.l1(ids, attention_mask=mask)[0]
            return self.l3(self.l2(hidden_state[:, 0]))

    loader = torch.utils.data.DataLoader(CustomDataset(), batch_size=s["batch_size"], shuffle=True, num_workers=0,
                                         collate_fn=collate if dynamic else None)
    start = time.perf_counter()
    model = BERTClass()
    model.train()
    no_decay = ("bias", "LayerNorm")
    groups = [{"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
               "weight_decay": s["weight_decay"]},
              {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
               "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=s["learning_rate"], eps=1e-6)
    steps = len(loader)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(s["warmup_fraction"] * steps), steps)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for data in loader:
        outputs = model(data["ids"], data["mask"])
        loss = loss_fn(outputs, data["targets"])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s["clipnorm"])
        optimizer.step()
        scheduler.step()
    return time.perf_counter() - start


def torch_pipeline_predict(texts: list[str], num_labels: int, s: dict) -> float:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from tfclf.models.backbones import resolve_checkpoint

    path = str(resolve_checkpoint("minilm-l6"))
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels,
                                                               problem_type="multi_label_classification")
    classify = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(path),
                        device="cpu", top_k=None, function_to_apply="sigmoid")
    start = time.perf_counter()
    classify(texts, batch_size=s["batch_size"], truncation=True, max_length=s["max_length"])
    return time.perf_counter() - start


# ------------------------------------------------------------------------------ the run
def measure(name: str, kind: str, run, n: int) -> dict:
    gc.collect()
    with PeakMemory() as memory, StolenTime() as stolen:
        seconds = run()
    row = {"system": name, "kind": kind, "seconds": round(seconds, 1), "samples_per_s": round(n / seconds, 1),
           "peak_rss_mib": round(memory.peak / 2**20), "rss_increase_mib": round((memory.peak - memory.start) / 2**20),
           "stolen_cpu_percent": stolen.percent}
    print(f"  {kind:<9} {name:<40} {row['seconds']:>7.1f} s {row['samples_per_s']:>8.1f}/s "
          f"peak {row['peak_rss_mib']:>6} MiB, stolen {stolen.percent}%", file=sys.stderr, flush=True)
    return row


FIXED, DYNAMIC, PIPELINE = "PyTorch recipe, fixed MAX_LEN padding", "PyTorch recipe, dynamic padding", \
    "PyTorch Hugging Face pipeline"
FP32, BF16 = "tfclf", "tfclf --precision matmul_bfloat16"


def ratios_of(rows: list[dict], systems: list[str], pick) -> dict:
    """tfclf's speed over each peer's, from the samples/s `pick` chooses among a system's runs."""
    def speed(kind: str, system: str) -> float:
        return pick([r["samples_per_s"] for r in rows if r["kind"] == kind and r["system"] == system])

    ratios = {}
    for tag, system in (("", FP32), ("bf16_", BF16))[:len(systems)]:
        ratios |= {
            f"{tag}train_vs_fixed_padding": speed("train", system) / speed("train", FIXED),
            f"{tag}train_vs_dynamic_padding": speed("train", system) / speed("train", DYNAMIC),
            f"{tag}inference_vs_pipeline": speed("inference", system) / speed("inference", PIPELINE),
        }
    return {k: round(v, 2) for k, v in ratios.items()}


def run_system(system: str, s: dict) -> dict:
    """One system's rows (training, inference or both), measured in this process."""
    texts, targets, names = goemotions_sample(s["samples"], s["seed"])
    n = len(texts)
    if system == FIXED or system == DYNAMIC:
        return {"rows": [measure(system, "train", lambda: torch_train(texts, targets, s, system == DYNAMIC), n)]}
    if system == PIPELINE:
        return {"rows": [measure(system, "inference", lambda: torch_pipeline_predict(texts, len(names), s), n)]}
    import tensorflow as tf

    trained = {}

    def train():
        seconds, trained["clf"] = tfclf_train(texts, targets, names, s, "float32" if system == FP32 else "matmul_bfloat16")
        return seconds

    rows = [measure(system, "train", train, n),
            measure(system, "inference", lambda: tfclf_predict(trained["clf"], texts, s), n)]
    pieces = trained["clf"].tokenizer.tokenize(tf.constant(texts)).row_lengths().numpy()
    return {"rows": rows, "mean_word_pieces": round(float(pieces.mean()), 1), "tensorflow": tf.__version__}


def in_child(system: str, s: dict) -> dict:
    """`run_system` in a fresh Python process: no framework's threads, caches or heap left over
    from another system (in one process, tfclf's epoch took 179 s after PyTorch's, 139 s alone)."""
    return json_from_fresh_process(Path(__file__), "--child", system, "--samples", str(s["samples"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=SETTINGS["samples"])
    parser.add_argument("--out", type=Path, help="default: results/throughput-CLASS.json, one file per CPU class")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run every system this many times, interleaved, each in a fresh process; ratios of "
                             "each system's median run, and of its fastest (least disturbed) run")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: measure one system, print JSON
    args = parser.parse_args()
    s = dict(SETTINGS, samples=args.samples)
    if args.child:
        print(json.dumps(run_system(args.child, s)))
        return
    args.out = args.out or RESULTS / f"throughput-{cpu_slug()}.json"
    from tfclf.runtime.cpu import describe as describe_cpu
    from tfclf.runtime.precision import cpu_has_bfloat16

    systems = [FP32] + ([BF16] if cpu_has_bfloat16() else [])  # bf16 matmuls only where the CPU has them
    # interleaved, each in its own process: PyTorch fixed, tfclf, PyTorch dynamic, pipeline, tfclf bf16
    results, rows = {}, []
    for repeat in range(1, args.repeats + 1):
        for system in [FIXED, FP32, DYNAMIC, PIPELINE] + systems[1:]:
            results[system] = in_child(system, s)
            rows += [{**row, "repeat": repeat} for row in results[system]["rows"]]
    ratios = {"ratios": ratios_of(rows, systems, statistics.median)}
    if args.repeats > 1:  # each system's least disturbed run: other guests only ever slow a run down
        ratios["ratios_fastest_runs"] = ratios_of(rows, systems, max)
    import torch

    result = {"settings": s, "repeats": args.repeats, "rows": rows, **ratios,
              "mean_word_pieces": results[FP32]["mean_word_pieces"], "processes": "one per system",
              "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores", "cpu": describe_cpu(),
              "versions": {"tensorflow": results[FP32]["tensorflow"], "torch": torch.__version__,
                           "python": platform.python_version()}}
    save_json(args.out, result)
    print(f"\n{cpu_line(result['cpu'])}")
    print(f"{'run':<5}{'kind':<10}{'system':<42}{'seconds':>9}{'samples/s':>11}{'peak RSS MiB':>14}{'RSS +MiB':>10}"
          f"{'stolen CPU %':>14}")
    for r in rows:
        print(f"{r['repeat']:<5}{r['kind']:<10}{r['system']:<42}{r['seconds']:>9.1f}{r['samples_per_s']:>11.1f}"
              f"{r['peak_rss_mib']:>14}{r['rss_increase_mib']:>10}{str(r['stolen_cpu_percent']):>14}")
    for key, values in ratios.items():
        print(f"\n{'ratios of the medians' if key == 'ratios' else 'ratios of the fastest runs'}:")
        for name, value in values.items():
            print(f"  {name:<28} {value:.2f}x")


if __name__ == "__main__":
    main()
