"""Ablation of the fine-tuning techniques of Sun et al. (2019) on TREC-6 and GoEmotions.

    python benchmarks/ablation.py trec [--variants baseline layer-decay ...] [--combine layer-decay pretrain]
    python benchmarks/ablation.py goemotions --precision matmul_bfloat16 --variants ...

Every variant fine-tunes the same checkpoint with the dataset's settings from
benchmarks/accuracy.py (same epochs, length, batch, learning rate) through the CLI, changing
one thing: layer-wise learning-rate decay, last-four-layer pooling, within-task further
pre-training (tfclf pretrain on the training texts), balanced class weights; --combine runs
the named techniques together. Results are appended to benchmarks/results/ablation-NAME.json
as they finish, so a long ablation can be run in parts.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import PREPARE, RESULTS, ROOT, SETTINGS, WORK  # noqa: E402

TECHNIQUES = {
    "baseline": [],
    "layer-decay": ["--layer-decay", "0.9"],  # 6 layers: the embeddings learn at 0.53 lr
    "last4-concat": ["--pooling", "last4-concat"],
    "pretrain": [],  # the further pre-trained checkpoint, see pretrained()
    "class-weight": ["--class-weight", "balanced"],
}
# Further pre-training epochs per data set. GoEmotions has 8x TREC's texts: one epoch there is
# 1,357 masked-LM steps of 32, more than TREC's three (3 x 171 = 513), and three would take
# about an hour on two cores.
PRETRAIN_EPOCHS = {"trec": 3, "goemotions": 1}
DEFAULT_SEED = 42  # tfclf train's default


def pretrained(name: str, train: Path, model: str, settings: dict) -> Path:
    """tfclf pretrain on the training texts (labels unused), once per dataset."""
    out = WORK / name / "pretrained"
    if not (out / "config.json").exists():
        subprocess.run([sys.executable, "-m", "tfclf", "pretrain", "--text", str(train), "--model", model,
                        "--out", str(out), "--epochs", str(PRETRAIN_EPOCHS[name]), "--max-length",
                        str(settings["max_length"]), "--batch-size", "32", "--whole-word",
                        "--precision", "float32"],  # as the recorded tables were pre-trained
                       check=True)
    return out


def run_variant(name: str, variant: str, techniques: list[str], model: str, precision: str, seed: int) -> dict:
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    train, test, valid = PREPARE[name](folder)
    s = SETTINGS[name]
    start = time.perf_counter()
    base = str(pretrained(name, train, model, s)) if "pretrain" in techniques else model
    pretrain_seconds = time.perf_counter() - start
    extra = [arg for t in techniques for arg in TECHNIQUES[t]]
    if "last4-concat" not in techniques:
        extra += ["--pooling", s.get("pooling", "cls")]
    extra += ["--precision", precision]  # the whole table of a data set is run in one precision
    if seed != DEFAULT_SEED:  # another seed of a row: how much of a difference one seed explains
        extra += ["--seed", str(seed)]
        variant = f"{variant}@seed{seed}"
    run_dir = folder / f"ablation-{variant}"
    command = ["train", "--train", str(train), *valid, "--task", s["task"], "--model", base, "--epochs",
               str(s["epochs"]), "--max-length", str(s["max_length"]), "--batch-size", str(s["batch_size"]),
               "--lr", str(s["lr"]), *extra, "--out", str(run_dir)]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tfclf", *command], check=True)
    train_seconds = time.perf_counter() - start
    evaluation = json.loads(subprocess.run([sys.executable, "-m", "tfclf", "evaluate", "--run", str(run_dir),
                                            "--data", str(test)], check=True, capture_output=True,
                                           text=True).stdout)
    key = "macro_f1" if s["task"] == "multilabel" else "accuracy"
    return {"variant": variant, "techniques": techniques, key: evaluation[key], "eval_file": test.name,
            "train_seconds": round(train_seconds, 1), "pretrain_seconds": round(pretrain_seconds, 1),
            "pretrain_epochs": PRETRAIN_EPOCHS[name] if "pretrain" in techniques else 0,
            "command": "tfclf " + " ".join(command).replace(f"{ROOT}/", "")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", choices=["trec", "goemotions"])
    parser.add_argument("--variants", nargs="*", default=list(TECHNIQUES), choices=list(TECHNIQUES))
    parser.add_argument("--combine", nargs="*", default=[], choices=[t for t in TECHNIQUES if t != "baseline"])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--precision", default="float32", help="tfclf train --precision, for every variant")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="another seed: rows are named VARIANT@seedN")
    args = parser.parse_args()
    out = RESULTS / f"ablation-{args.data}.json"
    found = json.loads(out.read_text()) if out.exists() else {"data": args.data, "settings": SETTINGS[args.data],
                                                              "results": []}
    recorded = found["settings"].get("precision", "float32")
    if found["results"] and recorded != args.precision:
        sys.exit(f"{out} holds {recorded} runs; run every variant of a table in one precision")
    found["settings"]["precision"] = args.precision
    plan = [(v, [] if v == "baseline" else [v]) for v in args.variants]
    if args.combine:
        plan.append(("+".join(args.combine), list(args.combine)))
    for variant, techniques in plan:
        row = run_variant(args.data, variant, techniques, args.model, args.precision, args.seed)
        found["results"] = [r for r in found["results"] if r["variant"] != row["variant"]] + [row]
        found["machine"] = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores"
        RESULTS.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(found, indent=2) + "\n")
        metric = "macro_f1" if "macro_f1" in row else "accuracy"
        print(f"{row['variant']:<28} {metric} {row[metric]:.4f}  {row['train_seconds']:>7.0f} s", flush=True)


if __name__ == "__main__":
    main()
