"""What a large vocabulary costs: XLM-RoBERTa-base's shape (250,002 pieces x 768, 12 layers, 514
positions: 192 M of its 278 M parameters are the embedding) as a RoBERTa encoder with random
weights, beside the same encoder with a 50,265-piece vocabulary (roberta-base's), on this CPU.

    python benchmarks/large_vocab.py                  # -> results/large-vocab-CLASS.json
    python benchmarks/large_vocab.py --vocab 300 --hidden 32 --layers 1 --train 32   # a smoke run

Each vocabulary runs in a fresh process: build the folder (random weights written as Hugging Face
names them, a byte-level BPE vocabulary of that size without merges: every text is bytes, which
the max length of 64 cuts), one epoch of `fit` (batch 16, no validation, float32), then the
SavedModel export. Reported: the fit's peak resident memory (the process's, model build
included), train texts/s, the SavedModel's size on disk and its export time. Random weights and
a vocabulary of filler pieces: the speed and memory are the shape's, not a real checkpoint's.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, ROOT, StolenTime, cpu_slug, json_from_fresh_process, print_table, save_json


def write_folder(folder: Path, vocab_size: int, hidden: int, layers: int) -> Path:
    """A RoBERTa folder of that shape: config.json, model.safetensors, vocab.json, merges.txt."""
    sys.path.insert(0, str(ROOT))
    from tfclf.models import backbones, families, weights
    from tfclf.text.bpe import BytePairSpec, byte_alphabet

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    alphabet = list(byte_alphabet())
    filler = [f"\u0120w{i}" for i in range(vocab_size - len(specials) - len(alphabet))]
    spec = BytePairSpec(tuple(specials + alphabet + filler), ())
    folder.mkdir(parents=True, exist_ok=True)
    spec.save(folder)
    config = families.read_config({"model_type": "roberta", "vocab_size": len(spec.vocab), "hidden_size": hidden,
                                   "num_hidden_layers": layers, "num_attention_heads": max(1, hidden // 64),
                                   "intermediate_size": 4 * hidden, "max_position_embeddings": 514,
                                   "pad_token_id": 1})
    config.save_pretrained(folder)
    weights.write_safetensors(folder / "model.safetensors", weights.to_hugging_face(backbones.build_backbone(config)))
    return folder


def texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    words = ["the", "game", "was", "really", "great", "awful", "vote", "phone", "day", "story"]
    found = [" ".join(rng.choice(words, size=rng.integers(4, 30))) for _ in range(n)]
    return found, [t.split()[0] for t in found]


def child(vocab_size: int, hidden: int, layers: int, n_train: int) -> dict:
    """One measurement, in this (fresh) process."""
    from tfclf import TextClassifier

    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        folder = write_folder(Path(scratch) / "checkpoint", vocab_size, hidden, layers)
        written_s = time.perf_counter() - start
        x, y = texts(n_train, 0)
        clf = TextClassifier.from_pretrained(str(folder), task="multiclass", epochs=1, batch_size=16, max_length=64,
                                             valid_fraction=0.0, precision="float32")
        with StolenTime() as stolen:
            start = time.perf_counter()
            clf.fit(x, y, verbose=0)
            train_s = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        start = time.perf_counter()
        saved = clf.export(Path(scratch) / "saved")
        export_s = time.perf_counter() - start
        size_mib = sum(p.stat().st_size for p in Path(saved).rglob("*") if p.is_file()) / 2 ** 20
        checkpoint_mib = (folder / "model.safetensors").stat().st_size / 2 ** 20
    parameters = int(sum(v.shape.num_elements() for v in clf.model.trainable_variables))
    return {"vocab": vocab_size, "hidden": hidden, "layers": layers, "parameters": parameters,
            "train_texts": n_train, "train_s": round(train_s, 2), "train_per_s": round(n_train / train_s, 1),
            "fit_peak_rss_mib": round(peak_mib), "checkpoint_mib": round(checkpoint_mib),
            "saved_model_mib": round(size_mib), "export_s": round(export_s, 1), "folder_written_s": round(written_s, 1),
            "stolen_cpu_percent": stolen.percent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", type=int, nargs="+", default=[50_265, 250_002])
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--train", type=int, default=256, help="training texts (one epoch)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # internal: one vocabulary size
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.hidden, args.layers, args.train)))
        return
    sys.path.insert(0, str(ROOT))
    from tfclf.runtime.cpu import describe

    rows = [json_from_fresh_process(Path(__file__), "--child", str(v), "--hidden", str(args.hidden), "--layers",
                                    str(args.layers), "--train", str(args.train), quiet=True) for v in args.vocab]
    cpu = describe()
    result = {"cpu": cpu, "command": "python benchmarks/large_vocab.py " + " ".join(sys.argv[1:]), "rows": rows}
    save_json(args.out or RESULTS / f"large-vocab-{cpu_slug()}.json", result)
    print_table(cpu, ["vocabulary x width x layers", "parameters", "fit peak RSS MiB", "train texts/s",
                      "checkpoint MiB", "SavedModel MiB", "export s", "stolen CPU %"],
                [[f"{r['vocab']:,} x {r['hidden']} x {r['layers']}", f"{r['parameters']:,}", r["fit_peak_rss_mib"],
                  r["train_per_s"], r["checkpoint_mib"], r["saved_model_mib"], r["export_s"],
                  r["stolen_cpu_percent"]] for r in rows])


if __name__ == "__main__":
    main()
