"""What every benchmark script does the same way: write its JSON atomically, name its CPU."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"


def save_json(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)


def cpu_slug() -> str:
    """This CPU's class as a file name part: avx2, avx-512, avx512-bf16, amx."""
    from tfclf.runtime.cpu import cpu_class

    return cpu_class().lower()


def cpu_line(cpu: dict) -> str:
    """The CPU as each table's header names it (from tfclf.runtime.cpu.describe)."""
    return f"CPU: {cpu['model']}, {cpu['class']} ({', '.join(cpu['flags']) or 'no AVX2'}), {cpu['cores']} cores"


def print_table(cpu: dict, columns: list[str], rows: list[list]) -> None:
    """The CPU's line, then a Markdown table, as docs/BENCHMARKS.md quotes them."""
    print(cpu_line(cpu))
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")


def json_from_fresh_process(script: Path, *args: str, env: dict | None = None, quiet: bool = False) -> dict:
    """Run `script args` in a fresh Python process (no framework's threads, caches or heap left
    over from an earlier measurement) and return the JSON on the last line it prints; `quiet`
    hides its stderr (TensorFlow's logs)."""
    done = subprocess.run([sys.executable, str(script), *args], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL if quiet else None, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cpu_times() -> list[int] | None:
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    except (OSError, ValueError):
        return None


class StolenTime:
    """The share of the machine's CPU time the hypervisor gave to other guests while the block
    ran (`steal` in /proc/stat; None where there is none to read). On a shared VM a run with
    much stolen time is slower for reasons outside the code, so the tables print it."""

    def __enter__(self) -> "StolenTime":
        self._start, self.percent = _cpu_times(), None
        return self

    def __exit__(self, *exc) -> None:
        end = _cpu_times()
        if self._start and end:
            delta = [b - a for a, b in zip(self._start, end)]
            self.percent = round(100 * delta[7] / max(sum(delta), 1), 1)
