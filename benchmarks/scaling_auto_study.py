"""How should `auto` choose? Selection rules compared on the Alabdulmohsin et al. curves, chosen
on one half of each domain's curves and reported on the other half.

Step 1 (the CPU part, cached): for every curve, each `auto` candidate's held-out RMSLE on the
fitting rows' own prefixes (what auto sees) and its predictions of the held-out rows when fitted
on all fitting rows (what the user gets). Step 2 (instant): each rule picks from the prefix
scores alone; the rule with the smallest worst-domain ratio to the best single family on the
CHOOSE half is then reported on the REPORT half, beside every single family and last1. The split
is a fixed seeded half per domain (`--split-seed`); the REPORT half is never used to choose.

    python benchmarks/scaling_auto_study.py            # step 1 for all 92 curves, then step 2
    python benchmarks/scaling_auto_study.py --max-curves 2   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scaling_real import DOMAINS, load_curves  # noqa: E402

from practicum.errors import FitError  # noqa: E402
from practicum.scaling.families import AUTO_FAMILIES  # noqa: E402
from practicum.scaling.law import ScalingLaw, check_curve, loss_space, rmsle  # noqa: E402


def curve_record(curve: dict) -> dict:
    """Prefix scores and held-out predictions of every candidate on one curve."""
    metric = curve["metric"]
    x, y, w, _ = check_curve(curve["x_fit"], curve["y_fit"], metric=metric)
    chooser = ScalingLaw("auto", metric=metric, warn=False)
    chooser.warnings_ = []
    started = time.perf_counter()
    table = chooser._prefix_table(x, y, w, list(AUTO_FAMILIES))
    prefix_seconds = time.perf_counter() - started
    truth = loss_space(curve["y_test"], metric)
    preds, held = {}, {}
    for name in table:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                law = ScalingLaw(name, metric=metric, warn=False).fit(x, y)
            pred = loss_space(law.predict(curve["x_test"]), metric)
        except FitError:
            pred = np.full(truth.shape, np.nan)
        preds[name] = pred.tolist()
        held[name] = rmsle(pred, truth) if np.all(np.isfinite(pred)) else math.inf
    return {"domain": curve["domain"], "name": curve["name"], "metric": metric, "truth": truth.tolist(),
            "prefix": table, "pred": preds, "heldout": held, "prefix_seconds": prefix_seconds}


def cached_records(curves, records: list, cache: Path) -> list:
    """`curve_record` for every curve not yet in `records`, the cache rewritten atomically every 10
    curves (a killed run resumes); returns the records of `curves`, in the cache's order."""
    done = {r["name"] for r in records}
    for i, curve in enumerate(curves):
        if curve["name"] in done:
            continue
        records.append(curve_record(curve))
        print(f"[{i + 1}/{len(curves)}] {curve['name']}", file=sys.stderr, flush=True)
        if (i + 1) % 10 == 0 or i + 1 == len(curves):
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(json.dumps({"records": records}, default=float) + "\n")
            tmp.replace(cache)
    wanted = {c["name"] for c in curves}
    return [r for r in records if r["name"] in wanted]


# ------------------------------------------------------------------ rules (prefix scores -> prediction)

def _gmean(scores, which=slice(None)):
    s = np.asarray(scores, dtype=float)[which]
    return float(np.exp(np.mean(np.log(np.maximum(s, 1e-300))))) if np.all(np.isfinite(s)) else math.inf


def ranked(rec, which=slice(None)) -> list[tuple[str, float]]:
    from practicum.scaling.families import get_family

    scores = {n: _gmean(s, which) for n, s in rec["prefix"].items()}
    ok = {n: v for n, v in scores.items() if np.isfinite(v) and np.all(np.isfinite(rec["pred"][n]))}
    return sorted(ok.items(), key=lambda kv: (round(kv[1], 12), get_family(kv[0]).n_params))


def pick(which=slice(None)):
    def rule(rec):
        return np.asarray(rec["pred"][ranked(rec, which)[0][0]])
    return rule


def blend(k: int, power: float):
    """Geometric mean of the top-k candidates' predictions, weighted by score^-power."""
    def rule(rec):
        top = ranked(rec)[:k]
        wts = np.array([max(s, 1e-12) ** -power for _, s in top])
        logs = np.array([np.log(np.maximum(rec["pred"][n], 1e-300)) for n, _ in top])
        return np.exp(wts @ logs / wts.sum())
    return rule


def prefer(family: str, ratio: float, metric: str | None = None):
    """The best candidate, unless `family` scores within `ratio` of it (on `metric` curves)."""
    def rule(rec):
        order = ranked(rec)
        scores = dict(order)
        best = order[0][0]
        if (metric is None or rec["metric"] == metric) and family in scores and scores[family] <= ratio * order[0][1]:
            best = family
        return np.asarray(rec["pred"][best])
    return rule


RULES = {
    "argmin gmean (now)": pick(),
    "argmin longest prefix": pick(slice(-1, None)),
    "argmin 2 longest": pick(slice(-2, None)),
    **{f"blend top{k} w^-{p:g}": blend(k, p) for k in (2, 3, 4) for p in (0.0, 1.0, 2.0)},
    **{f"prefer M4 within {r:g}x (error)": prefer("M4", r, "error") for r in (1.25, 1.5, 2.0, 3.0, math.inf)},
    **{f"prefer M4 within {r:g}x": prefer("M4", r) for r in (1.25, 1.5)},
}


def split(records, seed: int) -> dict[str, str]:
    """name -> "choose" / "report": a seeded half of each domain (the odd one goes to report)."""
    side = {}
    rng = np.random.default_rng(seed)
    for domain in DOMAINS:
        names = sorted(r["name"] for r in records if r["domain"] == domain)
        order = rng.permutation(len(names))
        for rank, i in enumerate(order):
            side[names[i]] = "choose" if rank < len(names) // 2 else "report"
    return side


def table(records, rule_preds) -> dict:
    """Mean held-out RMSLE per domain: every rule, every single family, last1."""
    out = {}
    for domain in DOMAINS:
        recs = [r for r in records if r["domain"] == domain]
        if not recs:
            continue
        row = {"curves": len(recs)}
        for name in rule_preds:
            row[name] = float(np.mean([rmsle(rule_preds[name][r["name"]], r["truth"]) for r in recs]))
        for fam in AUTO_FAMILIES:
            vals = [r["heldout"].get(fam, math.inf) for r in recs]
            row[f"family {fam}"] = float(np.mean(vals))
        out[domain] = row
    return out


def best_family(row) -> tuple[str, float]:
    fams = {k: v for k, v in row.items() if k.startswith("family ")}
    name = min(fams, key=fams.get)
    return name[len("family "):], fams[name]


def issue15_changes(records, before_path: Path) -> dict:
    """Per family and domain, mean held-out RMSLE before issue 15 (the committed 2026-11-21
    scaling_real.json, same curves and protocol) and now (this cache); and for auto, on how many
    curves the choice changed and how much of auto's change the chosen families' own fits explain."""
    before = {c["name"]: c["scores"] for c in json.loads(before_path.read_text())["per_curve"]}
    out = {}
    for domain in DOMAINS:
        recs = [r for r in records if r["domain"] == domain and r["name"] in before]
        if not recs:
            continue
        row = {}
        for fam in AUTO_FAMILIES:
            old = [before[r["name"]][fam]["rmsle"] for r in recs if fam in before[r["name"]]]
            new = [r["heldout"].get(fam, math.inf) for r in recs if fam in before[r["name"]]]
            if old:
                row[fam] = {"before": float(np.mean(old)), "now": float(np.mean(new)),
                            "changed_curves": int(sum(abs(a - b) > 1e-3 * max(a, 1e-9) for a, b in zip(old, new)))}
        now_choice = [ranked(r)[0][0] for r in recs]
        old_choice = [before[r["name"]]["auto"].get("chosen") for r in recs]
        row["auto"] = {
            "before": float(np.mean([before[r["name"]]["auto"]["rmsle"] for r in recs])),
            "now": float(np.mean([r["heldout"][c] for r, c in zip(recs, now_choice)])),
            # the old choices, each refitted with today's fit of that family: the change due to fits alone
            "old_choices_with_todays_fits": float(np.mean([r["heldout"].get(c, math.inf)
                                                           for r, c in zip(recs, old_choice)])),
            "choice_changed_on": int(sum(a != b for a, b in zip(now_choice, old_choice))),
            "curves": len(recs)}
        out[domain] = row
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(ROOT / "benchmarks" / "results" / "scaling_auto_study_cache.json"))
    parser.add_argument("--max-curves", type=int, default=None, help="per domain (a smoke run)")
    parser.add_argument("--split-seed", type=int, default=23)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling_auto_study.json"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    cache = Path(args.cache)
    records = json.loads(cache.read_text())["records"] if cache.exists() else []
    curves = load_curves()
    if args.max_curves:
        curves = [c for d in DOMAINS for c in [c for c in curves if c["domain"] == d][: args.max_curves]]
    records = cached_records(curves, records, cache)
    side = split(records, args.split_seed)
    rule_preds = {name: {r["name"]: rule(r) for r in records} for name, rule in RULES.items()}
    halves = {h: table([r for r in records if side[r["name"]] == h], rule_preds) for h in ("choose", "report")}

    def worst_ratio(rule, half):
        return max(halves[half][d][rule] / best_family(halves[half][d])[1] for d in halves[half])

    chosen = min(RULES, key=lambda rule: worst_ratio(rule, "choose"))
    for half in ("choose", "report"):
        print(f"\n{half.upper()} half: mean held-out RMSLE (ratio to the best single family in brackets)")
        print(f"{'rule':<32}" + "".join(f"{d:>16}" for d in halves[half]))
        for rule in list(RULES) + ["family last1"]:
            cells = [f"{halves[half][d][rule]:.4f} ({halves[half][d][rule] / best_family(halves[half][d])[1]:.2f})"
                     for d in halves[half]]
            print(f"{rule:<32}" + "".join(f"{c:>16}" for c in cells))
        print(f"{'best single family':<32}" + "".join(
            f"{best_family(halves[half][d])[0] + ' ' + format(best_family(halves[half][d])[1], '.4f'):>16}"
            for d in halves[half]))
    print(f"\nchosen on the CHOOSE half (smallest worst-domain ratio): {chosen}")
    before_path = ROOT / "benchmarks" / "results" / "scaling_real.json"
    changes = issue15_changes(records, before_path) if before_path.exists() else {}
    for domain, row in changes.items():
        a = row["auto"]
        print(f"{domain}: auto before {a['before']:.4f} now {a['now']:.4f}; old choices with today's fits "
              f"{a['old_choices_with_todays_fits']:.4f}; choice changed on {a['choice_changed_on']}/{a['curves']}")
        print("   " + "; ".join(f"{f} {v['before']:.4f}->{v['now']:.4f} ({v['changed_curves']})"
                                for f, v in row.items() if f != "auto"))
    result = {"benchmark": "scaling_auto_study", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/scaling_auto_study.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "split_seed": args.split_seed, "split": side, "tables": halves, "chosen_rule": chosen,
              "worst_ratio": {h: {r: worst_ratio(r, h) for r in RULES} for h in halves},
              "issue15_changes": changes}
    Path(args.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
