"""Does `auto`'s error-rate prior hold on outside curves? A pre-declared comparison on LCDB.

Why: the rule "prefer M4 within 2x on error-rate curves" looked good on the REPORT half of the
Alabdulmohsin et al. curves (`scaling_auto_study.py`), but that half had been looked at, so
adopting the rule there would be tuning on reported curves. This benchmark is the independent
check, declared here (2026-12-07) before any of its results were seen.

Data: the learning-curve database of Mohr et al. (LCDB 1.0, ECML-PKDD 2022), as shipped in the
sdist of the PyPI package `lcdb` 0.1.0 (MIT licence; file lcdb/database-accuracy.csv: scikit-learn
learners on OpenML data sets, test accuracy at anchor training sizes 16·√2^k over repeated
outer/inner splits). Nothing is installed: the script reads the CSV out of the tarball, fetched once
with `pip download --no-deps --no-build-isolation lcdb==0.1.0 -d DIR`.

Declared protocol.
- A curve is one (OpenML id, learner). Its error rate at an anchor is 1 − test accuracy, averaged
  over the rows (splits) at that anchor; anchors with fewer than 5 rows are dropped.
- Eligible: at least 10 anchors left, and a mean error rate > 0 at every one (RMSLE needs it).
- Sample: `--curves` (default 400) eligible curves drawn uniformly without replacement with
  numpy's default_rng(`--sample-seed`, default 23) from the eligible curves sorted by (id, learner).
- Task: fit on the first n//2 anchors, predict the other n − n//2; score each prediction by the
  held-out RMSLE (primary) and the mean absolute error in error rate (secondary). Predictions are
  clipped into [1e-4, 1] first (an error rate's range, floored so that the log is finite; added
  after a 3-curve smoke run showed single families predicting negative error rates, before the
  declared run); a non-finite prediction is a failure and scores inf.
- Compared, every one choosing from the fitting rows only: today's `auto` (argmin of the geometric
  mean prefix RMSLE over `AUTO_FAMILIES`); `auto` with the error-rate prior (M4 whenever its
  prefix score is within 2× of the best, as in scaling_auto_study.py); every single candidate
  family (last1 among them).
- Decision. The prior *wins* if its mean held-out RMSLE is below today's `auto`'s and a two-sided
  Wilcoxon signed-rank test of the per-curve RMSLE differences (curves where the two choose alike
  drop out) gives p < 0.05. If it wins, it becomes an option of `auto`; it becomes the default only
  if it also has the lower mean absolute error. If it does not win, `auto` is left as it is.

    python benchmarks/scaling_auto_confirm.py --lcdb DIR/lcdb-0.1.0.tar.gz             # the declared run
    python benchmarks/scaling_auto_confirm.py --lcdb DIR/lcdb-0.1.0.tar.gz --curves 3 \\
        --cache /tmp/confirm_cache.json --out /tmp/confirm.json                       # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tarfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import wilcoxon  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scaling_auto_study import cached_records, pick, prefer  # noqa: E402

from practicum.scaling.families import AUTO_FAMILIES  # noqa: E402
from practicum.scaling.law import rmsle  # noqa: E402

LCDB = ROOT.parent / "shared" / "data" / "lcdb" / "lcdb-0.1.0.tar.gz"
MEMBER = "lcdb-0.1.0/lcdb/database-accuracy.csv"
MIN_ROWS, MIN_ANCHORS = 5, 10
RULES = {"auto (today)": pick(), "auto + error prior (M4 within 2x)": prefer("M4", 2.0, "error")}


def load_lcdb_curves(path: Path, n_curves: int, seed: int) -> tuple[list[dict], int]:
    """The declared sample of eligible LCDB error-rate curves, each split into halves, and the
    number of eligible curves."""
    with tarfile.open(path) as tar:
        frame = pd.read_csv(tar.extractfile(MEMBER), usecols=["openmlid", "learner", "size_train", "score_test"])
    per_anchor = frame.groupby(["openmlid", "learner", "size_train"], sort=True)["score_test"].agg(["mean", "size"])
    per_anchor = per_anchor[per_anchor["size"] >= MIN_ROWS]
    eligible = []
    for (openmlid, learner), block in per_anchor.groupby(level=["openmlid", "learner"], sort=True):
        x = block.index.get_level_values("size_train").to_numpy(float)
        err = 1.0 - block["mean"].to_numpy(float)
        if x.size >= MIN_ANCHORS and np.all(err > 0):
            eligible.append((int(openmlid), str(learner), x, err))
    take = np.sort(np.random.default_rng(seed).choice(len(eligible), size=min(n_curves, len(eligible)),
                                                      replace=False))
    curves = []
    for i in take:
        openmlid, learner, x, err = eligible[i]
        half = x.size // 2
        curves.append({"domain": "LCDB", "name": f"{openmlid}/{learner.rsplit('.', 1)[-1]}", "metric": "error",
                       "x_fit": x[:half], "y_fit": err[:half], "x_test": x[half:], "y_test": err[half:]})
    return curves, len(eligible)


def scores(records, predict) -> dict:
    """Per-curve held-out RMSLE and mean absolute error of one rule or family."""
    rm, mae = [], []
    for r in records:
        pred, truth = np.clip(np.asarray(predict(r), dtype=float), 1e-4, 1.0), np.asarray(r["truth"])
        ok = np.all(np.isfinite(pred))
        rm.append(rmsle(pred, truth) if ok else math.inf)
        mae.append(float(np.mean(np.abs(pred - truth))) if ok else math.inf)
    return {"rmsle": rm, "mae": mae}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lcdb", default=str(LCDB), help="the lcdb-0.1.0 sdist (tar.gz)")
    parser.add_argument("--curves", type=int, default=400)
    parser.add_argument("--sample-seed", type=int, default=23)
    parser.add_argument("--cache", default=str(ROOT / "benchmarks" / "results" / "scaling_auto_confirm_cache.json"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling_auto_confirm.json"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if not Path(args.lcdb).exists():
        print(f"no LCDB sdist at {args.lcdb}: pip download --no-deps --no-build-isolation lcdb==0.1.0 -d DIR, "
              "then pass --lcdb DIR/lcdb-0.1.0.tar.gz", file=sys.stderr)
        return 2
    curves, n_eligible = load_lcdb_curves(Path(args.lcdb), args.curves, args.sample_seed)
    cache = Path(args.cache)
    records = json.loads(cache.read_text())["records"] if cache.exists() else []
    started = time.process_time()
    records = cached_records(curves, records, cache)

    table = {name: scores(records, rule) for name, rule in RULES.items()}
    for fam in AUTO_FAMILIES:
        table[f"family {fam}"] = scores(records, lambda r, fam=fam: r["pred"][fam])
    last1 = np.array(table["family last1"]["rmsle"])
    print(f"\n{len(records)} LCDB curves (of {n_eligible} eligible), fit on the first half of the anchors")
    print(f"{'rule / family':<38}{'mean RMSLE':>11}{'median':>9}{'mean MAE':>10}{'beats last1':>12}{'failed':>8}")
    summary = {}
    for name, s in table.items():
        rm, mae = np.array(s["rmsle"]), np.array(s["mae"])
        summary[name] = {"mean_rmsle": float(np.mean(rm)), "median_rmsle": float(np.median(rm)),
                         "mean_mae": float(np.mean(mae)), "beats_last1": float(np.mean(rm < last1)),
                         "failed": int(np.sum(~np.isfinite(rm)))}
        print(f"{name:<38}{summary[name]['mean_rmsle']:>11.4f}{summary[name]['median_rmsle']:>9.4f}"
              f"{summary[name]['mean_mae']:>10.4f}{summary[name]['beats_last1']:>11.0%}{summary[name]['failed']:>8}")

    today, prior = (np.array(table[k]["rmsle"]) for k in RULES)
    differ = today != prior
    p = float(wilcoxon(today[differ], prior[differ]).pvalue) if differ.sum() >= 10 else math.nan
    names = list(RULES)
    wins = bool(summary[names[1]]["mean_rmsle"] < summary[names[0]]["mean_rmsle"] and p < 0.05)
    default = wins and summary[names[1]]["mean_mae"] < summary[names[0]]["mean_mae"]
    print(f"\nthe prior changes the choice on {int(differ.sum())} of {len(records)} curves; better on "
          f"{int(np.sum(prior < today))}, worse on {int(np.sum(prior > today))}; Wilcoxon p = {p:.3g}")
    print(f"declared decision: the prior {'wins' if wins else 'does not win'}"
          f"{' (and becomes the default)' if default else ''}")
    result = {"benchmark": "scaling_auto_confirm", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/scaling_auto_confirm.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "source": "lcdb 0.1.0 sdist, " + MEMBER, "eligible_curves": n_eligible, "curves": len(records),
              "cpu_seconds_this_run": time.process_time() - started, "summary": summary,
              "prior_vs_today": {"changed": int(differ.sum()), "better": int(np.sum(prior < today)),
                                 "worse": int(np.sum(prior > today)), "wilcoxon_p": p},
              "prior_wins": wins, "prior_becomes_default": default,
              "per_curve": {r["name"]: {k: table[k]["rmsle"][i] for k in table} for i, r in enumerate(records)}}
    Path(args.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
