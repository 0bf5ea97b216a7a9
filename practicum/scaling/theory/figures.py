"""Figures of `practicum theory`, drawn from the stage JSON alone (simulation points over
closed-form curves). One function per stage; each returns the PNG path it wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap

from practicum.report import new_figure, save_figure

COLORS = {"keep-hard": "tab:red", "keep-easy": "tab:blue", "random": "tab:gray", "none": "black"}


def _errorbars(ax, xs, rows, color, label=None, marker="o"):
    # a single seed has no interval (None in the JSON): draw the point without a bar
    mean = np.array([r["mc_mean"] for r in rows], dtype=float)
    lo = np.array([r["mc_ci_low"] for r in rows], dtype=float)
    hi = np.array([r["mc_ci_high"] for r in rows], dtype=float)
    yerr = np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)])
    ax.errorbar(xs, mean, yerr=yerr, fmt=marker, color=color, ms=4, capsize=2, label=label)


def _axes(ax, xlabel: str, ylabel: str, title: str, *, xscale: str | None = None, yscale: str | None = None,
          title_size: float | None = None, legend: float | None = None) -> None:
    """Label one panel; `legend` is the legend's font size (None: no legend)."""
    if xscale:
        ax.set_xscale(xscale)
    if yscale:
        ax.set_yscale(yscale)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    # without a size the title keeps matplotlib's own (axes.titlesize), which fontsize=None would reset
    ax.set_title(title, **({} if title_size is None else {"fontsize": title_size}))
    if legend is not None:
        ax.legend(fontsize=legend)


def _side_by_side(count: int):
    """A figure of `count` 5×4 panels in a row, and their axes as a flat array."""
    fig, axes = new_figure(5 * count, 4, ncols=count)
    return fig, np.atleast_1d(axes).ravel()


def plot_reference(data: dict, path: Path) -> Path:
    fig, ax = new_figure(6, 4)
    rows = data["rows"]
    for rule in dict.fromkeys(r["rule"] for r in rows):
        sub = [r for r in rows if r["rule"] == rule]
        ns = [r["n"] for r in sub]
        ax.plot(ns, [r["theorem"] for r in sub], "-", color=COLORS[rule], label=f"{rule} (Theorem 1)")
        _errorbars(ax, ns, sub, COLORS[rule])
    _axes(ax, "pool size n", "test error",
          f"Theorem 1 vs Monte-Carlo (d={data['d']}, λ={data['lam']}, ρ={data['rho']})", xscale="log", legend=8)
    return save_figure(fig, path)


def plot_rules(data: dict, path: Path) -> Path:
    fig, axes = _side_by_side(len(data["panels"]))
    for ax, panel in zip(axes, data["panels"]):
        for rule, curve in panel["curves"].items():
            style = ":" if rule == "none" else "-"
            label = "no pruning (n = kept)" if rule == "none" else rule
            ax.plot(panel["kept"], curve, style, color=COLORS[rule], label=label)
        if "pareto" in panel:
            ax.plot(panel["kept"], panel["pareto"], "--", color="tab:purple", label="best rule and p (Pareto)")
        for rule in ("keep-hard", "keep-easy", "random"):
            sub = [r for r in panel["sim"] if r["rule"] == rule]
            _errorbars(ax, [r["kept"] for r in sub], sub, COLORS[rule])
        _axes(ax, "kept examples m = p·n", "test error",
              f"ρ = {panel['rho']}, kept fraction p = {panel['p']} (d = {data['d']})", xscale="log", yscale="log",
              legend=8)
    return save_figure(fig, path)


def plot_regime(data: dict, path: Path) -> Path:

    maps = data["maps"]
    rules = data["rules"]
    cmap = ListedColormap([COLORS[r] for r in rules])
    fig, axes = _side_by_side(len(maps))
    x = np.array(data["n_over_d"])
    y = np.array(data["p"])
    for ax, m in zip(axes, maps):
        ax.pcolormesh(x, y, np.array(m["winner"]), cmap=cmap, vmin=-0.5, vmax=len(rules) - 0.5, shading="nearest",
                      alpha=0.55)
        for spot in data["spots"]:
            if spot["rho"] != m["rho"]:
                continue
            ax.scatter([spot["n_over_d"]], [spot["p"]], s=60, color=COLORS[spot["mc_winner"]], edgecolor="white",
                       marker="o" if spot["mc_winner"] == spot["theorem_winner"] else "X")
        _axes(ax, "data abundance n/d (pool size over dimension)", "kept fraction p",
              f"best rule, ρ = {m['rho']} (dots: Monte-Carlo winner)", xscale="log")
    handles = [axes[0].scatter([], [], color=COLORS[r], label=r) for r in rules]
    axes[0].legend(handles=handles, fontsize=8, loc="lower right")
    return save_figure(fig, path)


def plot_descent(data: dict, path: Path) -> Path:
    fig, axes = _side_by_side(len(data["panels"]))
    for ax, panel in zip(axes, data["panels"]):
        for rule, curve in panel["theorem"].items():
            ax.plot(panel["p"], curve, "-", color=COLORS[rule], label=f"{rule} (λ = {data['lam']})")
            ax.plot(panel["p"], panel["limit"][rule], ":", color=COLORS[rule], lw=1)
            sub = [r for r in panel["sim"] if r["rule"] == rule]
            _errorbars(ax, [r["p"] for r in sub], sub, COLORS[rule])
        ax.axvline(panel["peak_p"], color="k", lw=0.8, ls="--")
        _axes(ax, "kept fraction p (dashed: p = d/n; dotted: λ → 0)", "test error",
              f"multiple descent, n = {panel['n']} (n/d = {panel['n_over_d']}), ρ = {data['rho']}", legend=8)
    return save_figure(fig, path)


def plot_sorscher(data: dict, path: Path) -> Path:
    fig, ax = new_figure(6, 4)
    rows = data["rows"]
    labels = []
    for i, r in enumerate(rows):
        ax.scatter([i], [r["spec"]], marker="s", facecolor="none", edgecolor=COLORS[r["rule"]])
        _errorbars(ax, [i], [r], COLORS[r["rule"]])
        labels.append(f"α={r['alpha_tot']} f={r['f']}\nθ={r['theta']} {r['rule'].replace('keep-', '')}")
    ax.set_xticks(range(len(rows)), labels, fontsize=6, rotation=90)
    ax.set_ylabel("test error")
    ax.set_title("Sorscher et al. (max-margin, N = 100): squares = paper, dots = ours")
    return save_figure(fig, path)


def plot_dimension(data: dict, path: Path) -> Path:
    fig, ax = new_figure(6, 4)
    dig = data["digits"]
    sizes = np.array(dig["sizes"], dtype=float)
    ax.plot(sizes, dig["errors"], "o", color="tab:purple", label="1-NN test error (digits)")
    scale = dig.get("scale")
    fitted = (scale * sizes ** (-dig["alpha"]) if scale is not None and np.isfinite(scale)
              else dig["errors"][0] * (sizes / sizes[0]) ** (-dig["alpha"]))
    ax.plot(sizes, fitted, "-", color="tab:purple", label=f"fitted (M1) α = {dig['alpha']:.2f}")
    for name, alpha in data["references"].items():
        ax.plot(sizes, dig["errors"][0] * (sizes / sizes[0]) ** (-alpha), "--", lw=1, label=f"{name}: α = {alpha:.2f}")
    _axes(ax, "training examples n", "test error",
          f"digits: D ≈ {dig['dimension']:.1f} (TwoNN {dig['dim_twonn']:.1f}, MLE {dig['dim_mle']:.1f}), "
          f"α·D = {dig['implied_c']:.1f}", xscale="log", yscale="log", title_size=9, legend=7)
    return save_figure(fig, path)


def plot_binning(data: dict, path: Path) -> Path:
    fig, ax = new_figure(6, 4)
    for rate, color in zip(data["rates"], ("tab:blue", "tab:orange", "tab:green")):
        n = np.array(rate["sizes"], dtype=float)
        mse = np.array(rate["mse"])
        ax.plot(n, mse, "o", color=color, ms=4)
        ref = mse[0] * (n / n[0]) ** rate["documented_slope"]
        ax.plot(n, ref, "-", color=color,
                label=f"d={rate['d']}: slope {rate['measured_slope']:.3f} "
                      f"vs −2/(2+d) = {rate['documented_slope']:.3f}")
    _axes(ax, "samples n", "integrated squared error", "binning estimator of a Lipschitz function", xscale="log",
          yscale="log", legend=8)
    return save_figure(fig, path)


def plot_composition(data: dict, path: Path) -> Path:
    fig, ax = new_figure(6, 4)
    rows = data["rows"]
    fit = data["fit"]
    labels = np.array(rows["mixture"])
    n = np.array(rows["n"])
    y = np.array(rows["error"])
    for name, color in zip(fit["mixtures"], ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        sel = labels == name
        sizes = np.unique(n[sel])
        means = [y[sel & (n == s)].mean() for s in sizes]
        ax.plot(sizes, means, "o", color=color)
        ax.plot(sizes, np.exp(fit["intercepts"][name] - fit["shared_alpha"] * np.log(sizes)), "-", color=color,
                label=f"{name} (own α = {fit['separate_alphas'][name]:.2f})")
    _axes(ax, "training examples n", "1-NN test error",
          f"shared α = {fit['shared_alpha']:.2f}; slope p = {fit['slope_p']:.2g}, "
          f"intercept p = {fit['intercept_p']:.2g}", xscale="log", yscale="log", title_size=9, legend=8)
    return save_figure(fig, path)


PLOTTERS = {"reference": plot_reference, "rules": plot_rules, "regime": plot_regime, "descent": plot_descent,
            "sorscher": plot_sorscher, "dimension": plot_dimension, "binning": plot_binning,
            "composition": plot_composition}
