"""The default `practicum study`, timed: wall, CPU and the memory of its whole process tree.

    python benchmarks/study_default_timed.py --out /tmp/default-study        # the issue-21 aim: <= 30 min, <= 2 GB
    python benchmarks/study_default_timed.py --out /tmp/q --quick --workers 1  # the CI smoke: <= 3 min of one core

Runs the command as a child process (a fresh folder each time: an existing one is refused) and samples,
every second, each process of its tree (the driver and its workers) from /proc: resident memory (RSS) and
proportional set size (PSS, a page shared by n processes counted 1/n, so the sum is what the tree takes from
the machine). Prints a table and writes benchmarks/results/study_default_timed[_quick].json with the commit,
the command, the machine's load before the start, and the study's first printed line. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB, (0, 0) if it is gone."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                values[key] = int(rest.split()[0])
    except (OSError, ValueError):
        return 0, 0
    return values.get("Rss", 0), values.get("Pss", 0)


class TreeSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 1.0):
        super().__init__(daemon=True)
        self.pid, self.every, self.done = pid, every, threading.Event()
        self.peak_rss = self.peak_pss = self.peak_one = 0
        self.at_peak: dict[int, int] = {}

    def run(self) -> None:
        while not self.done.is_set():
            each = {p: memory_kib(p) for p in tree(self.pid)}
            rss = sum(r for r, _ in each.values())
            pss = sum(q for _, q in each.values())
            self.peak_one = max([self.peak_one] + [r for r, _ in each.values()])
            if rss > self.peak_rss:
                self.peak_rss, self.at_peak = rss, {p: r for p, (r, _) in each.items()}
            self.peak_pss = max(self.peak_pss, pss)
            self.done.wait(self.every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the study's run folder (must not exist)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists: give a fresh folder (a resumed study would not be timed)")
    command = ["practicum", "--quiet", "study", "--out", str(args.out)]
    command += ["--quick"] if args.quick else []
    command += ["--workers", str(args.workers)] if args.workers else []
    load = os.getloadavg()
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = TreeSampler(child.pid)
    sampler.start()
    output = child.communicate()[0]
    wall = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    gib = 1024 ** 2
    result = {
        "benchmark": "study_default_timed", "command": " ".join(command), "returncode": child.returncode,
        "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(),
        "cores": len(os.sched_getaffinity(0)), "load_before": load, "python": sys.version.split()[0],
        "wall_seconds": round(wall, 1), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "largest_process_gib": round(sampler.peak_one / gib, 3),
        "tree_rss_gib": round(sampler.peak_rss / gib, 3), "tree_pss_gib": round(sampler.peak_pss / gib, 3),
        "tree_pss_gb": round(sampler.peak_pss * 1024 / 1e9, 3),
        "processes_at_rss_peak_mib": sorted(round(v / 1024) for v in sampler.at_peak.values()),
        "first_line": next((line for line in output.splitlines() if line.strip()), ""),
    }
    print(f"| command | wall | CPU | largest process | tree RSS | tree PSS |\n|---|---|---|---|---|---|\n"
          f"| `{result['command']}` | {wall / 60:.1f} min | {result['cpu_seconds'] / 60:.1f} min | "
          f"{result['largest_process_gib']:.2f} GiB | {result['tree_rss_gib']:.2f} GiB | "
          f"{result['tree_pss_gib']:.2f} GiB ({result['tree_pss_gb']:.2f} GB) |")
    print(result["first_line"])
    name = "study_default_timed" + ("_quick" if args.quick else "")
    target = ROOT / "benchmarks" / "results" / f"{name}.json"
    target.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {target}")
    if child.returncode:
        print(output[-3000:])
        raise SystemExit(child.returncode)


if __name__ == "__main__":
    main()
