"""Figures and report.html of a study: accuracy vs data with fits and bands, training curves with
injection markers, generated samples per round, and entropy per round."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from practicum.data.pool import Pool
from practicum.log import echo
from practicum.practice import analysis
from practicum.practice.generators import Request

LABELS = {"static": "static (all up front)", "dp": "Deliberate Practice", "vanilla": "dynamic-vanilla (ω=0)",
          "prune": "generate-then-prune"}
COLORS = {"static": "#1f77b4", "dp": "#d62728", "vanilla": "#7f7f7f", "prune": "#2ca02c"}


def write_study_report(out: Path, settings, summary: dict[str, Any], results: list[dict[str, Any]]) -> Path:
    from practicum.report import Section, write_report  # lazy: matplotlib import costs ~0.7x torch's

    figures = out / "figures"
    made = {
        "accuracy": accuracy_vs_data(figures / "accuracy_vs_data.png", summary, LABELS),
        "curves": training_curves(figures / "training_curves.png", results),
        "samples": sample_grid(figures / "samples_per_round.png", results),
        "entropy": entropy_per_round(figures / "entropy_per_round.png", results),
        "pairs": same_noise_pairs(figures / "dp_vs_vanilla_same_noise.png", settings, results),
    }
    headline_rows = headline(summary)
    table = _accuracy_rows(summary, LABELS)
    ran = set(settings.strategies)
    branch_outs = " and ".join(LABELS.get(k, k) for k in ("dp", "vanilla") if k in ran)
    sections = [
        Section("Result", [*([verdict(summary)] if verdict(summary) else []),
            "Every learner was trained only on generated images and is scored on the real test split "
            "(never used for tuning or patience). Static sets are all generated up front, on a geometric "
            "grid that stops where a doubling changes validation accuracy by less than one standard error; "
            "Deliberate Practice starts small and, when validation accuracy stops improving, adds samples "
            "generated with entropy guidance from the current learner. All runs share one iteration budget.",
            "Conventions: " + summary.get("conventions", ""),
            "Accuracy table: mean over seeds on the shared log-size grid; (k) = seeds whose measured range "
            "covers that size."],
            tables=[headline_rows, table]),
        Section("Accuracy vs data", [f"Mean over {settings.seeds} seeds with min-max band; thin dashed: the "
                                     "fitted scaling law (practicum.scaling, test error vs size), drawn over "
                                     "the measured sizes only; dotted grey: the target, static's best mean."
                                     + (f" {branch_outs} points are branch-outs: copies of the run before a "
                                        "round, trained to the same budget with no more data." if branch_outs
                                        else "")], figures=[made["accuracy"]]),
        Section("Training curves", ["Seed 0, " + ", ".join(LABELS.get(k, k) for k in ("dp", "vanilla", "static")
                                                           if k in ran)
                                    + ". Vertical lines: DP's rounds of new data (injections). New hard samples "
                                    "make the training loss jump; validation accuracy rises after."],
                figures=[made["curves"]]),
        Section("Generated samples", ["Seed 0, DP pool: one row per round, one column per class "
                                      "(round 0 is the vanilla start set)."], figures=[made["samples"]]),
        Section("What the guidance changed", ["Seed 0, DP's first guided round: for each class, the images DP "
                                              "added (top row of each pair) and the images the same generator makes "
                                              "from the same starting noise with no guidance (ω = 0, bottom row)."],
                figures=[made["pairs"]]),
        Section("Entropy of new samples", ["Predictive entropy of each round's new samples under the "
                                           "learner that asked for them ("
                                           + " vs ".join(LABELS.get(k, k) for k in ("dp", "vanilla") if k in ran)
                                           + ", seed 0)."],
                figures=[made["entropy"]]),
        Section("Compute", ["Generation seconds charge every vanilla sample at the bank's measured cost "
                            "per image; guided rounds are timed as they run."],
                tables=[[{"strategy": LABELS.get(k, k), **{f"{p} s": round(v, 1) for p, v in sec.items()}}
                         for k, sec in summary["seconds"].items() if k != "phases"],
                        [{"phase": k, "seconds": round(v, 1)} for k, v in summary["seconds"].get("phases", {}).items()]]),
        Section("Settings", ["The resolved settings (also in config.yaml)."],
                tables=[[{"setting": k, "value": json.dumps(v)} for k, v in settings.model_dump(mode="json").items()]]),
    ]
    return write_report(out / "report.html", "practicum study: Deliberate Practice vs static generation", sections,
                        subtitle=f"data: {settings.data}; seeds: {settings.seeds}; "
                                 f"iterations: {settings.practice.iterations}")


def _accuracy_rows(summary: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    strategies = summary["strategies"]
    sizes = sorted({int(n) for s in strategies.values() for n in s.get("grid", {})})
    rows = []
    for n in sizes:
        row: dict[str, Any] = {"size": n}
        for name, s in strategies.items():
            cell = s.get("grid", {}).get(str(n))
            row[labels.get(name, name)] = "" if cell is None else f"{100 * cell['mean']:.1f}% ({cell['n_seeds']})"
        rows.append(row)
    return rows


# ---------------------------------------------------------------- figures

def accuracy_vs_data(path: Path, summary: dict[str, Any], labels: dict[str, str]) -> Path:
    from practicum.report import new_figure, save_figure  # lazy: matplotlib import costs ~0.7x torch's

    fig, ax = new_figure(7, 4.5)
    points = summary["points"]
    for name in summary["strategies"]:
        by_seed = analysis.per_seed(points, name)
        sizes = sorted({n for v in by_seed.values() for n in v})
        if not sizes:
            continue
        values = [[v[n] for v in by_seed.values() if n in v] for n in sizes]
        mean = np.array([np.mean(v) for v in values])
        color = COLORS.get(name)
        ax.fill_between(sizes, [min(v) for v in values], [max(v) for v in values], color=color, alpha=0.15)
        ax.plot(sizes, mean, "o-", color=color, label=labels.get(name, name), markersize=4)
        family = summary["strategies"].get("static", {}).get("fit", {}).get("family", "auto")
        law, _ = analysis.fit_law(points, name, family or "auto")
        if law is not None and len(sizes) > 1:  # over the measured sizes: a law is no target beyond them
            grid = np.geomspace(min(sizes), max(sizes), 100)
            with np.errstate(all="ignore"):
                ax.plot(grid, 1 - np.asarray(law.predict(grid)), "--", color=color, alpha=0.6, linewidth=0.8,
                        label=f"{labels.get(name, name)}, fitted law")
    d = summary.get("data_multiplier_detail")
    if d and d.get("target") is not None:
        ax.axhline(d["target"], color="0.4", linewidth=0.8, linestyle=":",
                   label=f"target: static's best ({100 * d['target']:.1f}%)")
    plateau = summary.get("static_plateau")
    if plateau:  # the static grid stopped here: a doubling changed val accuracy by < 1 SE
        ax.axvspan(plateau["smaller"], plateau["larger"], color=COLORS["static"], alpha=0.08,
                   label=f"static plateau ({plateau['smaller']}→{plateau['larger']}: < 1 SE on val)")
    ax.set_xscale("log")
    ax.set_xlabel("generated training images")
    ax.set_ylabel(f"test accuracy ({summary.get('test_split', 'real test')})")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def _run(results: list[dict[str, Any]], strategy: str, seed: int = 0) -> dict[str, Any] | None:
    return next((r for r in results if r["strategy"] == strategy and r["seed"] == seed), None)


def _metrics(run_path: str | Path) -> list[dict[str, Any]]:
    path = Path(run_path) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def training_curves(path: Path, results: list[dict[str, Any]]) -> Path:
    from practicum.report import new_figure, save_figure  # lazy: matplotlib import costs ~0.7x torch's

    fig, axes = new_figure(7, 5.5, nrows=2)
    axes = np.asarray(axes).ravel()
    late_acc: list[float] = []
    late_loss: list[float] = []
    for name in ("dp", "vanilla", "static"):
        run = _run(results, name)
        if name == "static":  # the largest static set, for reference
            runs = [r for r in results if r["strategy"] == "static" and r["seed"] == 0]
            run = max(runs, key=lambda r: r["pool_size"]) if runs else None
        if run is None:
            continue
        rows = _metrics(run["path"])
        evals = [r for r in rows if r.get("event") == "eval"]
        if not evals:  # a run that logged no evaluations draws nothing, so it gets no legend entry
            continue
        color = COLORS.get(name)
        label = {"dp": "DP", "vanilla": "dynamic-vanilla", "static": f"static n={run['pool_size']}"}[name]
        axes[0].plot([e["step"] for e in evals], [e["val_accuracy"] for e in evals], color=color, label=label,
                     linewidth=1)
        axes[1].plot([e["step"] for e in evals], [e["train_loss"] for e in evals], color=color, linewidth=1)
        start = 0.2 * max((e["step"] for e in evals), default=0)
        late_acc += [e["val_accuracy"] for e in evals if e["step"] >= start]
        late_loss += [e["train_loss"] for e in evals if e["step"] >= start]
        if name == "dp":
            for inj in (r for r in rows if r.get("event") == "injection"):
                for ax in axes:
                    ax.axvline(inj["step"], color=color, alpha=0.25, linewidth=0.8)
    if late_acc:  # zoom on the part of training where the strategies differ
        axes[0].set_ylim(max(0.0, min(late_acc) - 0.02), min(1.0, max(late_acc) + 0.01))
        axes[1].set_ylim(min(late_loss) - 0.02, max(late_loss) + 0.05)
    axes[0].set_ylabel("val accuracy (real)")
    axes[1].set_ylabel("train loss")
    axes[1].set_xlabel("iteration")
    if axes[0].has_data():
        axes[0].legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def sample_grid(path: Path, results: list[dict[str, Any]], max_rows: int = 8) -> Path:
    """One row per round (round 0 = the vanilla start set), one column per class, as one image."""
    from practicum.report import new_figure, save_figure  # lazy: matplotlib import costs ~0.7x torch's

    run = _run(results, "dp")
    pool = Pool(Path(run["path"]) / "pool") if run else None
    fig, ax = new_figure(6, 1 if pool is None or len(pool) == 0 else 4.5)
    ax.grid(False)
    ax.set_xticks([])
    if pool is None or len(pool) == 0:
        ax.text(0.5, 0.5, "no DP run", ha="center")
        return save_figure(fig, path)
    index = pool.index()
    images = pool.images()
    rounds = sorted(index["round"].unique())
    if len(rounds) > max_rows:
        rounds = [rounds[i] for i in np.linspace(0, len(rounds) - 1, max_rows).round().astype(int)]
    classes = sorted(index["label"].unique())
    c, h, w = images.shape[1:]
    pad = 1
    canvas = np.ones((len(rounds) * (h + pad), len(classes) * (w + pad), c), dtype=np.float32)
    round_of, label_of = index["round"].to_numpy(), index["label"].to_numpy()
    for r_i, rnd in enumerate(rounds):
        for c_i, cls in enumerate(classes):
            rows = np.flatnonzero((round_of == rnd) & (label_of == cls))
            if len(rows):
                tile = (images[rows[0]].permute(1, 2, 0).numpy() + 1) / 2
                canvas[r_i * (h + pad):r_i * (h + pad) + h, c_i * (w + pad):c_i * (w + pad) + w] = tile
    ax.imshow(canvas.squeeze(-1) if c == 1 else canvas.clip(0, 1), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_yticks([(h + pad) * i + h / 2 for i in range(len(rounds))], [f"round {r}" for r in rounds], fontsize=7)
    names = pool.meta().get("class_names") or [str(k) for k in classes]
    ax.set_xticks([(w + pad) * i + w / 2 for i in range(len(classes))],
                  [str(names[k]) if k < len(names) else str(k) for k in classes], fontsize=7, rotation=45, ha="right")
    ax.set_title("DP pool, seed 0: one column per class", fontsize=9)
    return save_figure(fig, path)


def entropy_per_round(path: Path, results: list[dict[str, Any]], max_rounds: int = 6) -> Path:
    from practicum.report import new_figure, save_figure  # lazy: matplotlib import costs ~0.7x torch's

    fig, axes = new_figure(9, 3.5, ncols=2)
    axes = np.asarray(axes).ravel()
    for name in ("dp", "vanilla"):
        run = _run(results, name)
        if run is None:
            continue
        index = Pool(Path(run["path"]) / "pool").index()
        if "entropy" not in index:
            continue
        rounds = sorted(r for r in index["round"].unique() if r >= 1)
        means = [float(index.loc[index["round"] == r, "entropy"].mean()) for r in rounds]
        axes[1].plot(rounds, means, "o-", color=COLORS[name], label={"dp": "DP", "vanilla": "dynamic-vanilla"}[name])
        if name == "dp":
            shown = rounds if len(rounds) <= max_rounds else [rounds[i] for i in
                                                              np.linspace(0, len(rounds) - 1, max_rounds).round().astype(int)]
            cmap = __import__("matplotlib").colormaps["viridis"]
            for i, r in enumerate(shown):
                values = index.loc[index["round"] == r, "entropy"].to_numpy()
                axes[0].hist(values, bins=20, histtype="step", color=cmap(i / max(1, len(shown) - 1)), label=f"round {r}")
    axes[0].set_xlabel("entropy of new samples (nats), DP")
    axes[0].set_ylabel("count")
    if axes[0].has_data():
        axes[0].legend(fontsize=7)
    axes[1].set_xlabel("round")
    axes[1].set_ylabel("mean entropy of the round's samples")
    if axes[1].has_data():
        axes[1].legend(fontsize=8)
    return save_figure(fig, path)


def same_noise_pairs(path: Path, settings, results: list[dict[str, Any]], per_class: int = 3) -> Path:
    """DP's first guided round next to unguided samples from the same noise (seed 0).

    The round's first shard is sampled again with ω = 0 and the round's own seed and labels, so
    each pair differs only by the entropy guidance."""
    from practicum.report import new_figure, save_figure  # lazy: matplotlib import costs ~0.7x torch's

    run = _run(results, "dp")
    index = Pool(Path(run["path"]) / "pool").index() if run else None
    if index is None or not (index["round"] >= 1).any():
        fig, ax = new_figure(6, 1)
        ax.axis("off")
        ax.text(0.5, 0.5, "DP added no guided round in seed 0", ha="center")
        return save_figure(fig, path)
    pool = Pool(Path(run["path"]) / "pool")
    rows = np.flatnonzero(index["round"].to_numpy() == 1)
    val = settings.practice.load_data("val")
    generator = settings.practice.make_generator(val)
    shard = rows[:generator.shard_size]
    labels = torch.as_tensor(index["label"].to_numpy()[shard], dtype=torch.long)
    vanilla = generator(Request(labels=labels, omega=0.0, seed=int(index["seed"].to_numpy()[shard[0]]),
                                start=int(shard[0]))).images
    guided = pool.images()[torch.as_tensor(shard)]
    classes = sorted(set(labels.tolist()))
    c, h, w = guided.shape[1:]
    pad = 1
    canvas = np.ones((len(classes) * (2 * h + 2 * pad), per_class * (w + pad), c), dtype=np.float32)
    for r_i, cls in enumerate(classes):
        picks = np.flatnonzero(labels.numpy() == cls)[:per_class]
        for k, j in enumerate(picks):
            for part, images in enumerate((guided, vanilla)):
                y = r_i * (2 * h + 2 * pad) + part * (h + pad)
                canvas[y:y + h, k * (w + pad):k * (w + pad) + w] = (images[j].permute(1, 2, 0).numpy() + 1) / 2
    fig, ax = new_figure(3.2, 0.55 * len(classes) + 0.6)
    ax.grid(False)
    ax.set_xticks([])
    ax.imshow(canvas.squeeze(-1) if c == 1 else canvas.clip(0, 1), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    names = list(val.class_names) if val.class_names else [str(k) for k in range(val.num_classes)]
    ax.set_yticks([(2 * h + 2 * pad) * i + h for i in range(len(classes))], [names[k] for k in classes], fontsize=7)
    ax.set_title("DP (upper) vs ω = 0 (lower), same noise", fontsize=8)
    return save_figure(fig, path)


# ---------------------------------------------------------------- the summary in words

NO_INTERVAL = "—"


def _interval(ci, fmt) -> str:
    """'a to b' for an interval, or a dash (why there is none goes in the row's detail)."""
    return NO_INTERVAL if ci is None else f"{fmt(ci[0])} to {fmt(ci[1])}"


def _detail(text: str, ci, note) -> str:
    """A row's detail, with the reason it has no interval when it has none."""
    why = f"no interval: {note}" if ci is None and note else ""
    return "; ".join(part for part in (text, why) if part)


def verdict(summary: dict[str, Any]) -> str | None:
    """The study's result in one sentence: did DP reach static's best accuracy, and with how many images."""
    d = summary.get("data_multiplier_detail")
    if d is None:
        return None
    if d.get("target") is None or not d["per_seed"]:
        return f"DP could not be compared with static: {d.get('ci_note') or 'no static target'}"
    target = f"{100 * d['target']:.1f}% at {d['static_size']} images"
    per_seed = ", ".join(f"{r['multiplier']:.1f}×" if r["reached"] else f"needs > {r['dp_needs_more_than']}"
                         for r in d["per_seed"])
    reached = [r for r in d["per_seed"] if r["reached"]]
    if not reached:
        return (f"DP did not reach static's best accuracy ({target}) within its budget in any of "
                f"{d['n_seeds']} seeds (per seed, DP: {per_seed} images)")
    if len(reached) < d["n_seeds"]:
        return (f"DP reached static's best accuracy ({target}) in {len(reached)} of {d['n_seeds']} seeds only "
                f"(per seed: {per_seed}); no multiplier over seeds")
    m = d["multiplier"]
    amount = (f"{m:.1f}× fewer images" if m >= 1.05 else f"{1 / m:.1f}× more images" if m <= 1 / 1.05
              else "about as many images")
    interval = ("" if d["ci"] is None else
                f"; 95% CI {d['ci'][0]:.1f}× to {d['ci'][1]:.1f}×")
    return f"DP reached static's best accuracy ({target}) with {amount} (per seed: {per_seed}){interval}"


def headline(summary: dict[str, Any]) -> list[dict[str, str]]:
    """The headline numbers as rows (quantity, value, 95% interval over seeds, detail): the terminal
    summary and report.html print exactly these."""
    rows: list[dict[str, str]] = []
    if "data_multiplier_detail" not in summary:
        return rows
    d = summary["data_multiplier_detail"]
    if d.get("target") is not None:
        reached = sum(r["reached"] for r in d["per_seed"])
        detail = (f"target: static's best mean {100 * d['target']:.1f}% at n*={d['static_size']}; "
                  f"DP reached each seed's own target in {reached} of {d['n_seeds']} seeds")
        per_seed = ", ".join(f"s{r['seed']}: {r['multiplier']:.2f}x" if r["reached"]
                             else f"s{r['seed']}: DP needs > {r['dp_needs_more_than']}" for r in d["per_seed"])
        rows.append({"quantity": "data multiplier (geometric mean of per-seed n*/n_DP)",
                     "value": "not defined" if d["multiplier"] is None else f"{d['multiplier']:.2f}x",
                     "95% interval": _interval(d["ci"], lambda v: f"{v:.2f}x"),
                     "detail": _detail(f"{detail} ({per_seed})", d["ci"], d["ci_note"])})
        if d["multiplier"] is None and d.get("multiplier_reached_only") is not None:
            rows.append({"quantity": "  among the seeds that reached it only (biased upward)",
                         "value": f"{d['multiplier_reached_only']:.2f}x", "95% interval": NO_INTERVAL, "detail": ""})
    fit = summary.get("data_multiplier_fit", {})
    rows.append({"quantity": "data multiplier from fitted laws (one family for both)",
                 "value": "not defined" if fit.get("multiplier") is None else f"{fit['multiplier']:.2f}x",
                 "95% interval": _interval(fit.get("ci"), lambda v: f"{v:.2f}x"),
                 "detail": _detail(f"family {fit.get('family')}; {fit.get('method')}"
                                   if fit.get("family") else "", fit.get("ci"),
                                   fit.get("ci_note") or fit.get("note"))})
    for key, label in (("dp_gain_equal_size", "DP − static"), ("dp_vs_vanilla_equal_size", "DP − dynamic-vanilla")):
        for n, g in summary.get(key, {}).items():
            rows.append({"quantity": f"{label} at n={n} (points)", "value": f"{100 * g['mean']:+.1f}",
                         "95% interval": _interval(g["ci"], lambda v: f"{100 * v:+.1f}"),
                         "detail": _detail(f"{g['n_seeds']} seeds, paired", g["ci"], g.get("ci_note"))})
    vm = summary.get("vanilla_multiplier")
    if isinstance(vm, dict) and vm.get("target") is not None:
        rows.append({"quantity": "dynamic-vanilla multiplier (control)",
                     "value": "not defined" if vm["multiplier"] is None else f"{vm['multiplier']:.2f}x",
                     "95% interval": _interval(vm["ci"], lambda v: f"{v:.2f}x"),
                     "detail": _detail("", vm["ci"], vm["ci_note"])})
    pr = summary.get("dp_vs_prune")
    if pr and pr.get("prune_accuracy") is not None and pr.get("dp_accuracy") is not None:
        cost = pr.get("prune_over_dp_cost")
        rows.append({"quantity": f"DP vs generate-then-prune at n={pr['size']}",
                     "value": f"{100 * pr['dp_accuracy']:.1f}% vs {100 * pr['prune_accuracy']:.1f}%",
                     "95% interval": NO_INTERVAL,
                     "detail": "" if cost is None else f"prune generation costs {cost:.2f}x DP's"})
    return rows


def print_summary(summary: dict[str, Any], out: Path) -> None:
    """The readable table at the end of a study."""
    strategies = summary["strategies"]
    names = list(strategies)
    sizes = sorted({int(n) for s in strategies.values() for n in s.get("grid", {})})
    header = f"{'size':>6} | " + " | ".join(f"{LABELS.get(n, n)[:22]:>22}" for n in names)
    sentence = verdict(summary)
    if sentence:
        echo(sentence)
    echo("")
    echo(f"test accuracy on real held-out {summary.get('test_split', 'data')} (mean over seeds on the shared "
         "log-size grid; (k) = seeds whose measured range covers the size)")
    echo(header)
    echo("-" * len(header))
    for n in sizes:
        cells = []
        for name in names:
            cell = strategies[name].get("grid", {}).get(str(n))
            cells.append(f"{'':>22}" if cell is None else f"{100 * cell['mean']:>17.1f}% ({cell['n_seeds']})")
        echo(f"{n:>6} | " + " | ".join(cells))
    echo("")
    for row in headline(summary):
        text = row["95% interval"]
        interval = "" if text == NO_INTERVAL else f" (95% CI {text})"
        echo(f"{row['quantity']}: {row['value']}{interval}")
        if row["detail"]:
            echo(f"    {row['detail']}")
    phases = summary["seconds"].get("phases", {})
    if phases:
        echo("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in phases.items())
             + f"; peak memory {summary.get('peak_memory_mb', 0):.0f} MiB")
    echo(f"report: {out / 'report.html'}")
