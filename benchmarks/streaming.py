"""Streaming prediction: peak memory and rows/s of `tfclf predict --data` as the input grows.

    make demo                                   # the BBC News run (MiniLM) this predicts with
    python benchmarks/streaming.py              # 10k, 100k and 1M generated short texts
    python benchmarks/streaming.py --sizes 10000 100000 --before ../tfclf-before --before-python ../venv/bin/python
    python benchmarks/streaming.py --documents 10000 --hierarchical-run runs/bbc-hierarchical

Each size is one `tfclf predict --run RUN --data in.csv --out out.csv` in a fresh process, under a
wrapper that reads the child's peak resident memory (getrusage's ru_maxrss). The texts are 6-14
words drawn from a fixed vocabulary with a seeded generator, with an id column that the output
carries. rows/s counts the whole command; "steady" subtracts the start-up (TensorFlow's import,
the model's load) measured on a one-row input. `--before PATH` runs the same commands with the
tfclf package of another checkout (PYTHONPATH), for the figures before streaming. Prints a table
and writes benchmarks/results/streaming-<cpu>.json.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from common import RESULTS, ROOT, StolenTime, cpu_line, cpu_slug, save_json

WORDS = ("market shares bank rates growth profit election vote minister party match goal team season player "
         "film music award album star phone software users data network court police report city world year "
         "the a of and in to for on with as by at from new more after over").split()
WORK = ROOT / "benchmarks" / ".work" / "streaming"


def write_texts(path: Path, n: int, seed: int = 0, words: tuple[int, int] = (6, 14)) -> Path:
    import numpy as np

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("id,text\n")
        for start in range(0, n, 100_000):
            count = min(100_000, n - start)
            lengths = rng.integers(words[0], words[1] + 1, count)
            picks = rng.integers(0, len(WORDS), lengths.sum())
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            f.writelines(f"{start + i},{' '.join(WORDS[j] for j in picks[offsets[i]:offsets[i + 1]])}\n"
                         for i in range(count))
    tmp.replace(path)
    return path


MEASURE = ("import resource, subprocess, sys, time; t = time.perf_counter(); code = subprocess.run(sys.argv[1:])"
           ".returncode; print(code, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)"
           ".ru_maxrss)")


def predict(run: Path, data: Path, tfclf_path: Path | None, python: str = sys.executable) -> dict:
    """One `tfclf predict` in a fresh process: its seconds and peak RSS."""
    env = dict(os.environ, PYTHONPATH=str(tfclf_path)) if tfclf_path else None
    out = data.with_name(data.stem + ".out.csv")
    command = [sys.executable, "-c", MEASURE, python, "-m", "tfclf", "predict", "--run", str(run), "--data",
               str(data), "--out", str(out)]
    with StolenTime() as stolen:
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    code, seconds, peak_kib = done.stdout.split()
    if code != "0":
        raise SystemExit(f"tfclf predict failed on {data}:\n{done.stderr[-2000:]}")
    out.unlink(missing_ok=True)
    return {"seconds": round(float(seconds), 1), "peak_rss_mib": round(int(peak_kib) / 1024),
            "stolen_cpu_percent": stolen.percent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "bbc-news")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--before", type=Path, help="another checkout whose tfclf to measure too")
    parser.add_argument("--before-python", default=sys.executable, help="the Python (venv) that checkout runs in")
    parser.add_argument("--documents", type=int, default=0, help="long documents for a hierarchical run")
    parser.add_argument("--hierarchical-run", type=Path)
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/streaming-<cpu>.json")
    args = parser.parse_args()
    from tfclf.runtime.cpu import describe

    cpu = describe()
    rows = []
    for label, path, python in [("streaming", None, sys.executable)] + \
            ([("before", args.before, args.before_python)] if args.before else []):
        startup = predict(args.run, write_texts(WORK / "texts-1.csv", 1), path, python)["seconds"]
        for n in args.sizes:
            found = predict(args.run, write_texts(WORK / f"texts-{n}.csv", n), path, python)
            rows.append({"tfclf": label, "run": str(args.run), "rows": n, **found, "startup_seconds": startup,
                         "rows_per_s": round(n / found["seconds"]),
                         # None where the run is too short beside the start-up to say
                         "steady_rows_per_s": round(n / (found["seconds"] - startup))
                         if found["seconds"] - startup >= 5 else None})
            print(rows[-1], flush=True)
    if args.documents and args.hierarchical_run:
        data = write_texts(WORK / f"documents-{args.documents}.csv", args.documents, seed=1, words=(400, 1200))
        found = predict(args.hierarchical_run, data, None)
        rows.append({"tfclf": "streaming", "run": str(args.hierarchical_run), "rows": args.documents, **found,
                     "rows_per_s": round(args.documents / found["seconds"]), "documents": True})
        print(rows[-1], flush=True)
    print(cpu_line(cpu))
    print("| tfclf | run | rows | seconds | rows/s (steady) | peak RSS | stolen CPU |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tfclf']} | {Path(r['run']).name} | {r['rows']:,}{' documents' if r.get('documents') else ''} | "
              f"{r['seconds']} | {r['rows_per_s']} ({r.get('steady_rows_per_s') or '-'}) | {r['peak_rss_mib']} MiB | "
              f"{r['stolen_cpu_percent']} % |")
    save_json(args.out or RESULTS / f"streaming-{cpu_slug()}.json", {"cpu": cpu, "date": time.strftime("%Y-%m-%d"), "rows": rows})


if __name__ == "__main__":
    main()
