"""Memory allocators for CPU training: one epoch of `tfclf train` under each, interleaved.

    python benchmarks/allocator.py --rounds 2     # prints a table, writes benchmarks/results/allocator.json

The command is the one issue 14 measured on an AMD EPYC: 1,024 GoEmotions comments (a seeded
sample of train), multi-label, MiniLM-L6, one epoch, 128 tokens, batch 32, float32, 10 % held
out. Each configuration runs as its own process; the rounds interleave the configurations,
so a slow stretch of the machine hits all of them. Recorded per run: the epoch's seconds as
Keras reports them, the process's wall, user and system seconds (os.times of the child), and
the final training loss (which must not depend on the allocator).

Configurations: tfclf's default (TensorFlow's BFC allocator, TF_CPU_ALLOCATOR_USE_BFC=1) and
TensorFlow's own default (TFCLF_ALLOCATOR=system: oneDNN's allocator, malloc for blocks under
256 KiB), with glibc, or with an allocator preloaded where one is found: tcmalloc and jemalloc
from Debian's packages (`apt-get install libtcmalloc-minimal4 libjemalloc2`, for comparison
only), mimalloc from the PyPI wheel `cmeel-mimalloc`.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, cpu_line, save_json  # noqa: E402
from tfclf.runtime.cpu import describe  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "goemotions"
LIBS = Path("/usr/lib/x86_64-linux-gnu")


def mimalloc() -> str | None:
    for folder in map(Path, sys.path):
        found = folder / "cmeel.prefix" / "lib" / "libmimalloc.so"
        if found.is_file():
            return str(found)
    return None


def configurations() -> dict[str, dict[str, str]]:
    found = {"tfclf default (BFC)": {}, "TensorFlow default, glibc": {"TFCLF_ALLOCATOR": "system"}}
    preloads = {"tcmalloc": LIBS / "libtcmalloc_minimal.so.4", "jemalloc": LIBS / "libjemalloc.so.2",
                "mimalloc": mimalloc()}
    for name, lib in preloads.items():
        if lib and Path(lib).is_file():
            found[f"TensorFlow default, {name}"] = {"TFCLF_ALLOCATOR": "system", "LD_PRELOAD": str(lib)}
    return found


def sample(path: Path, n: int = 1024, seed: int = 0) -> None:
    import pandas as pd

    names = (SHARED / "labels.txt").read_text(encoding="utf-8").split()
    frame = pd.read_csv(SHARED / "train.tsv", sep="\t", header=None, quoting=3, names=["text", "ids", "id"],
                        dtype=str, keep_default_na=False).sample(n=n, random_state=seed)
    labels = [",".join(names[int(i)] for i in ids.split(",")) for ids in frame["ids"]]
    pd.DataFrame({"text": frame["text"], "labels": labels}).to_csv(path, index=False)


def run_once(data: Path, work: Path, env: dict[str, str]) -> dict:
    out = work / "run"
    command = [str(Path(sys.executable).parent / "tfclf"), "train", "--train", str(data), "--valid-fraction", "0.1",
               "--task", "multilabel", "--model", "minilm-l6", "--epochs", "1", "--max-length", "128",
               "--batch-size", "32", "--precision", "float32", "--out", str(out)]
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPU_ALLOCATOR_USE_BFC", "TFCLF_ALLOCATOR",
                                                                 "LD_PRELOAD")}
    start = time.perf_counter()
    process = subprocess.Popen(command, env={**environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    log, _ = process.communicate()
    wall = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"tfclf train failed under {env}:\n{log[-3000:]}")
    epoch = re.findall(r"\d+/\d+ \[=+\] - (\d+)s", log)
    with open(out / "history.csv", newline="") as f:
        loss = float(list(csv.DictReader(f))[-1]["loss"])
    return {"epoch_s": int(epoch[-1]) if epoch else None, "wall_s": round(wall, 1), "loss": loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="configuration names to run (default: all found)")
    parser.add_argument("--out", type=Path, default=RESULTS / "allocator.json")
    args = parser.parse_args()
    configs = {k: v for k, v in configurations().items() if not args.only or k in args.only}
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "go1k.csv"
        sample(data)
        for round_ in range(args.rounds):
            for name, env in configs.items():
                before = os.times()
                row = run_once(data, Path(tmp) / f"{len(runs[name])}-{abs(hash(name))}", env)
                after = os.times()
                row["user_s"] = round(after.children_user - before.children_user, 1)
                row["sys_s"] = round(after.children_system - before.children_system, 1)
                row["sys_share"] = round(row["sys_s"] / max(row["user_s"] + row["sys_s"], 1e-9), 3)
                runs[name].append(row)
                print(f"  round {round_ + 1} {name:<32} epoch {row['epoch_s']} s, wall {row['wall_s']} s, "
                      f"user {row['user_s']} s, sys {row['sys_s']} s, loss {row['loss']:.6f}", file=sys.stderr,
                      flush=True)
    summary = {name: {key: round(sum(r[key] for r in rows) / len(rows), 3)
                      for key in ("epoch_s", "wall_s", "user_s", "sys_s", "sys_share")} | {"loss": rows[0]["loss"]}
               for name, rows in runs.items()}
    result = {"cpu": describe(), "rounds": args.rounds, "runs": runs, "mean": summary,
              "losses_identical": len({r["loss"] for rows in runs.values() for r in rows}) == 1}
    save_json(args.out, result)
    print(f"\n{cpu_line(result['cpu'])}; mean of {args.rounds} round(s)")
    print(f"{'allocator':<34}{'epoch s':>9}{'wall s':>9}{'user s':>9}{'sys s':>8}{'sys share':>11}  final loss")
    for name, m in summary.items():
        print(f"{name:<34}{m['epoch_s']:>9.1f}{m['wall_s']:>9.1f}{m['user_s']:>9.1f}{m['sys_s']:>8.1f}"
              f"{m['sys_share']:>10.1%}  {m['loss']:.6f}")
    print(f"losses identical across all runs: {result['losses_identical']}")


if __name__ == "__main__":
    main()
