"""Reliability (issue 17): kill -9 at many seeded points and resume; malformed inputs at every command.

Kills: for each resumable command that works in steps (`diffusion train`, `generate`,
`practice`, `fit`, `compare`, `rate`, `distill`, `theory`) one uninterrupted reference run, then KILLS runs each SIGKILLed at a seeded
fraction of the reference's working time (from its folder's creation to its end, spread over it) and resumed; every third trial
is killed a second time during its resume before the final resume. A trial survives when the
resumed run finishes and its outputs (weights / pool images, labels and ids / result points /
fit.json / every file of the run for the others) and metrics.jsonl (wall-clock fields aside) equal the reference's. Also: a second
process on a run folder that is being written must be refused in one line.

Bad inputs: the hypothesis property suite (tests/test_bad_input_properties.py), with every
refusal logged, counted per command and per kind of error; any traceback fails it.

    python benchmarks/reliability.py --kills 5  # the measurement in docs/reliability.md
    python benchmarks/reliability.py --kills 2  # a smoke run
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout, not an installed copy
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from practicum.data import RunDir  # noqa: E402
from reliability_helpers import comparable_metrics, invoke, run_and_kill  # noqa: E402

TINY_UNET = dict(layers_per_block=1, block_out_channels=[8, 16], down_block_types=["DownBlock2D", "DownBlock2D"],
                 up_block_types=["UpBlock2D", "UpBlock2D"], norm_num_groups=4)
CSV = "curve,x,y,seed\n" + "".join(f"{c},{x},{a * x ** -0.3 + 0.05:.5f},{s}\n" for c, a in
                                   (("a", 0.5), ("b", 0.7), ("c", 0.6)) for x in (100, 200, 400, 800, 1600)
                                   for s in (0, 1))


def tiny_model(folder: Path) -> Path:
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        UNet2DModel(sample_size=8, in_channels=1, out_channels=1, num_class_embeds=11, **TINY_UNET) \
            .save_pretrained(folder)
    (folder / "scheduler_config.json").write_text(json.dumps(
        {"num_train_timesteps": 1000, "beta_schedule": "linear", "prediction_type": "epsilon", "clip_sample": True}))
    return folder


def commands(work: Path) -> dict[str, tuple[list, callable]]:
    model = tiny_model(work / "model")
    (work / "t.yaml").write_text(yaml.safe_dump({"unet": TINY_UNET, "batch_size": 8, "warmup": 2,
                                                 "checkpoint_every": 4, "steps": 40}))
    (work / "g.yaml").write_text(yaml.safe_dump({"guide_steps": 300, "guide_arch": "mlp"}))
    (work / "c.csv").write_text(CSV)

    def same_weights(a, b):
        return (a / "denoiser.safetensors").read_bytes() == (b / "denoiser.safetensors").read_bytes()

    def same_pool(a, b):
        from practicum.data.pool import Pool

        x, y = Pool(a / "pool").to_dataset(), Pool(b / "pool").to_dataset()
        return (np.array_equal(x.images.numpy(), y.images.numpy()) and x.ids.tolist() == y.ids.tolist()
                and x.labels.tolist() == y.labels.tolist())

    def same_result(a, b):
        def points(p):
            return [{k: v for k, v in q.items() if "seconds" not in k}
                    for q in RunDir(p).read_results()["points"]]
        return points(a) == points(b)

    def same_fit(a, b):
        return json.loads((a / "fit.json").read_text())["curves"] == json.loads((b / "fit.json").read_text())["curves"]

    (work / "d.yaml").write_text(yaml.safe_dump({
        "model": str(model), "data": "digits", "ipc": 2, "seeds": [0, 1], "steps": 4, "metric_spaces": ["cosine"],
        "student": {"width": 4, "epoch_scale": 0.002, "eval_points": 2}}))
    (work / "b.csv").write_text(CSV.replace("0.05,", "0.04,").replace(",0.5", ",0.45"))
    return {
        "compare": (["compare", work / "c.csv", work / "b.csv", "--curve", "a", "--n-boot", "200"], same_files),
        "rate": (["rate", "--data", "digits", "--epochs", "4", "--iterations-per-epoch", "3", "--batch-size", "16"],
                 same_files),
        "distill": (["distill", "--config", work / "d.yaml"], same_files),
        "theory": (["theory", "--quick", "--seeds", "1", "--stages", "reference,corollary,descent,binning"],
                   same_files),
        "diffusion train": (["diffusion", "train", "--data", "digits", "--config", work / "t.yaml"], same_weights),
        "generate": (["generate", "--n", "30", "--shard-size", "3", "--steps", "3", "--model", model, "--data",
                      "digits", "--config", work / "g.yaml"], same_pool),
        "practice": (["practice", "--model", model, "--data", "digits", "--iterations", "80", "--initial-size", "20",
                      "--add-size", "10", "--t-init", "1", "--arch", "mlp", "--max-rounds", "4"], same_result),
        "fit": (["fit", work / "c.csv", "--n-boot", "40"], same_fit),
    }


SKIP = {"run.json", "config.yaml", "inputs.json", ".lock", "metrics.jsonl", "report.html"}


def same_files(a: Path, b: Path) -> bool:
    """Every output of the reference equals the resumed run's: JSON without wall-clock fields,
    tables without timing columns, tensors and other files byte for byte (figures aside)."""
    import pandas as pd

    from reliability_helpers import _drop_timing

    for ref in sorted(p for p in b.rglob("*") if p.is_file()):
        rel = ref.relative_to(b)
        if rel.name in SKIP or rel.suffix in (".png", ".html") or rel.name.startswith("."):
            continue
        mine = a / rel
        if not mine.exists():
            print(f"    missing {rel}")
            return False
        if rel.suffix == ".json":
            equal = _drop_timing(json.loads(mine.read_text())) == _drop_timing(json.loads(ref.read_text()))
        elif rel.suffix == ".parquet":
            x, y = pd.read_parquet(mine), pd.read_parquet(ref)
            timing = [c for c in x.columns if "seconds" in c or c == "time"]
            equal = x.drop(columns=timing).equals(y.drop(columns=timing))
        else:
            equal = mine.read_bytes() == ref.read_bytes()
        if not equal:
            print(f"    differs: {rel}")
            return False
    return True


def kill_trials(kills: int, seed: int, only: set[str] | None = None) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="practicum-kill-") as tmp:
        work = Path(tmp)
        for name, (args, same) in commands(work).items():
            if only and name not in only:
                continue
            reference = work / f"{name.replace(' ', '_')}_reference"
            assert invoke(*args, "--out", reference).code == 0, name
            # the working part of the run: from its folder's creation (config.yaml) to its end
            duration = time.time() - (reference / "config.yaml").stat().st_mtime
            rng = random.Random(f"{seed}-{name}")
            for trial in range(kills):
                out = work / f"{name.replace(' ', '_')}_{trial}"
                # stratified over the run: trial k lands in the k-th slice of (0, 0.9) of its duration
                frac = (trial + rng.random()) / kills * 0.9
                outcomes = [run_and_kill([*args, "--out", out], frac * duration, ready=lambda: (out / "run.json").exists())]
                if trial % 3 == 2:  # killed again while resuming
                    outcomes.append(run_and_kill([*args, "--out", out, "--resume"], rng.uniform(0.05, 0.5) * duration))
                resumed = invoke(*args, "--out", out, "--resume")
                ok = (resumed.code == 0 and json.loads((out / "run.json").read_text())["status"] == "finished"
                      and same(out, reference)
                      and comparable_metrics(out / "metrics.jsonl") == comparable_metrics(reference / "metrics.jsonl"))
                rows.append({"command": name, "trial": trial, "kill_at_fraction": round(frac, 3),
                             "kills": outcomes.count("killed"), "outcomes": outcomes, "survived": bool(ok),
                             "error": None if resumed.code == 0 else resumed.stderr.strip()})
                print(f"  {name:16s} trial {trial}: killed at {frac:4.0%} of the run ({outcomes}) -> "
                      f"{'same outputs and metrics' if ok else 'DIFFERENT: ' + str(rows[-1]['error'])}", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    return rows


def second_writer_refused() -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        from practicum.data import RunDir

        (Path(tmp) / "c.csv").write_text(CSV)
        run = RunDir(Path(tmp) / "F")
        run.acquire()  # another process holds the folder
        try:
            out = invoke("fit", Path(tmp) / "c.csv", "--out", Path(tmp) / "F", "--n-boot", "0")
        finally:
            run.release()
        return out.code == 2 and len(out.error_lines) == 1 and "another process" in out.stderr


def bad_inputs() -> dict:
    log = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_bad_input_properties.py"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PRACTICUM_PROPERTY_LOG": str(log), "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    log.unlink()
    per_command = collections.Counter(" ".join(r["args"][:2]) if r["args"][0] == "diffusion" else r["args"][0]
                                      for r in rows)
    kinds = collections.Counter(_kind(r["error"]) for r in rows)
    return {"cases": len(rows), "passed": proc.returncode == 0, "seconds": round(seconds, 1),
            "per_command": dict(per_command.most_common()), "distinct_errors": len(kinds),
            "top_errors": dict(kinds.most_common(15)), "pytest_tail": proc.stdout.strip().splitlines()[-1:]}


def _kind(line: str) -> str:
    line = re.sub(r"/\S+", "PATH", line)
    line = re.sub(r"'[^']*'", "'…'", line)
    line = re.sub(r"-?\d+(\.\d+)?", "N", line)
    return line.split(" (")[0][:90]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=6, help="kill trials per command")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-properties", action="store_true")
    parser.add_argument("--only", default=None, help="comma-separated commands to kill (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    began = time.perf_counter()
    print(f"kill -9 and resume, {args.kills} trials per command:")
    trials = kill_trials(args.kills, args.seed, set(args.only.split(",")) if args.only else None)
    refused = second_writer_refused()
    props = None if args.skip_properties else bad_inputs()
    result = {
        "issue": 17, "date": time.strftime("%Y-%m-%d"), "machine": "2-core shared dev box, loaded",
        "python": platform.python_version(), "torch": torch.__version__,
        "command": "python benchmarks/reliability.py " + " ".join(sys.argv[1:]),
        "kills": {"trials": len(trials), "kill_signals": sum(t["kills"] for t in trials),
                  "survived": sum(t["survived"] for t in trials),
                  "per_command": {c: f"{sum(t['survived'] for t in trials if t['command'] == c)}/"
                                     f"{sum(1 for t in trials if t['command'] == c)}"
                                  for c in dict.fromkeys(t["command"] for t in trials)},
                  "rows": trials},
        "second_writer_refused": refused,
        "bad_inputs": props,
        "seconds": round(time.perf_counter() - began, 1),
    }
    out = ROOT / "benchmarks" / "results" / "reliability.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'command':18s} {'survived':>9s}")
    for command, score in result["kills"]["per_command"].items():
        print(f"{command:18s} {score:>9s}")
    print(f"kill signals sent: {result['kills']['kill_signals']}; second writer refused: {refused}")
    if props:
        print(f"bad inputs: {props['cases']} generated cases, suite {'passed' if props['passed'] else 'FAILED'} "
              f"in {props['seconds']} s; {props['distinct_errors']} distinct error kinds")
        for command, count in props["per_command"].items():
            print(f"  {command:18s} {count:5d}")
    print(f"wrote {out} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
