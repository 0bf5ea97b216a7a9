"""Alchemist where the paper works, small and controlled: select data for a generator on the web-like Fashion pool.

    python benchmarks/select_fashion.py --out DIR [--seeds 5] [--pool-size 10000] [--steps 3000] [--smoke]
    python benchmarks/select_fashion.py --out DIR --table      # the markdown tables of DIR's JSON

1. Fixed across seeds and arms: the pool (`practicum.select.webpool.build_web_pool` on --pool-size rows of
   Fashion train, seed 0), the rater's clean hold-out (--holdout rows of val, stratified), the **codec** (a
   64-component PCA fitted once on all 5,000 clean val rows, so every arm's generator decodes through the
   same decoder), the judge (a small CNN trained on --judge-rows clean Fashion train rows, seed 123, cached in DIR) and the
   real statistics (judge features of all 10,000 test rows).
2. Per seed s: the rater (diffusion proxy with the issue-22 defaults: common stratified draws, softmax
   groups of 8, scale-free AdamW, a proxy warm-started on the hold-out; --rater-steps steps over 10
   epochs, the last checkpoint; instance ratings), and three control rankings the rater must beat:
   the same seed's **untrained** rater, **pixel typicality** (minus the pixel distance to the class
   mean) and the **proxy loss** itself (minus the trained proxy's ε-MSE under 16 common draws: easy
   high). Each ranking's sha256 is stored with the results (the .npy files stay in DIR), and the
   rater's gates (`practicum.select.gates`) per seed; between-seed agreement in the summary.
3. Arms, all class-balanced, each a fresh class-conditional ε-MLP in the codec's latent (width 512,
   linear β, 10 % label drop, EMA) with generator seed s, sampled with DDIM 50 steps and CFG 2,
   2,000 samples (200 per class):
   - equal steps (--steps each): full, random-50, shift-gsample-50, random-20, shift-gsample-20,
     top-k-20, and Shift-Gsample-20 on each control ranking (untrained-sg-20, typicality-sg-20,
     loss-sg-20);
   - equal epochs (`@eq-epochs`: --steps × subset / pool, as many epochs as full gets): random-50,
     shift-gsample-50, random-20, shift-gsample-20. --steps is chosen so the 20 % arm converges within
     its share (see docs/benchmarks.md, issue 22).
4. Readouts per arm: FD to all 10k test rows (judge features), conditional accuracy (the judge on
   class-conditioned samples), and the selection's composition: harmful share and the share of each
   defect kind. Across seeds: mean ± std and paired per-seed differences with Student-t intervals
   (`practicum.select.seed_stats`) for `PAIRS`, and the issue's aims.

Writes DIR/select_fashion.json (and --results) after every (seed, arm); a rerun skips finished ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from practicum.data import atomic_write_json, load_fashion  # noqa: E402
from practicum.select import selectors as sel  # noqa: E402
from practicum.select.webpool import ALWAYS_HARMFUL, build_web_pool, clean_holdout  # noqa: E402

LAYOUT = "select_fashion/2"  # the issue-22 design; earlier JSONs are not resumed
PAPER_FID = {"full": 17.48, "random-50": 19.70, "shift-gsample-50": 16.20, "top-k-20": 45, "random-20": 21.2,
             "shift-gsample-20": 18.6}
RANKINGS = ("rater", "untrained", "typicality", "loss")
EQUAL_STEPS = (("full", None), ("random-50", None), ("shift-gsample-50", "rater"), ("random-20", None),
               ("shift-gsample-20", "rater"), ("top-k-20", "rater"), ("untrained-sg-20", "untrained"),
               ("typicality-sg-20", "typicality"), ("loss-sg-20", "loss"))
EQUAL_EPOCHS = ("random-50@eq-epochs", "shift-gsample-50@eq-epochs", "random-20@eq-epochs",
                "shift-gsample-20@eq-epochs")
ARMS = tuple(name for name, _ in EQUAL_STEPS) + EQUAL_EPOCHS
METRICS = ("fd", "cond_accuracy", "harmful_share", "duplicate_share")
PAIRS = (("shift-gsample-50", "full"), ("shift-gsample-50", "random-50"), ("shift-gsample-20", "random-20"),
         ("shift-gsample-20", "top-k-20"), ("shift-gsample-20", "untrained-sg-20"),
         ("shift-gsample-20", "typicality-sg-20"), ("shift-gsample-20", "loss-sg-20"),
         ("shift-gsample-20", "random-50"), ("shift-gsample-50@eq-epochs", "random-50@eq-epochs"),
         ("shift-gsample-20@eq-epochs", "random-20@eq-epochs"), ("shift-gsample-50@eq-epochs", "full"))


# ---------------------------------------------------------------- judge and metrics

class Judge(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.GELU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.GELU(), nn.Conv2d(128, 128, 3, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(128, classes)

    def forward(self, x):
        return self.head(self.body(x))


def train_judge(x, y, epochs, seed=123, batch=256):
    torch.manual_seed(seed)
    model = Judge()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(batch):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def load_or_train_judge(path: Path, x, y, epochs):
    """The judge is trained once per output folder and kept (safetensors), so a resumed run uses the same one."""
    from safetensors.torch import load_file, save_file

    from practicum.data import atomic_write_with

    if path.exists():
        model = Judge()
        model.load_state_dict(load_file(str(path)))
        return model.eval()
    model = train_judge(x, y, epochs)
    atomic_write_with(path, lambda tmp: save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp))
    return model


@torch.no_grad()
def judge_out(model, x, batch=1000):
    feats, logits = [], []
    for part in x.split(batch):
        h = model.body(part)
        feats.append(h.double())
        logits.append(model.head(h))
    return torch.cat(feats).numpy(), torch.cat(logits)


def _sqrt_psd(m):
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet(gen, real_stats):
    """Fréchet distance between N(mean, cov) of `gen` and the real statistics (μ, Σ^½, tr Σ)."""
    mu2, s2_sqrt, tr2 = real_stats
    mu1, s1 = gen.mean(0), np.cov(gen, rowvar=False)
    inner = s2_sqrt @ s1 @ s2_sqrt
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + tr2
                 - 2 * np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0, None)).sum())


# ---------------------------------------------------------------- the fixed codec and the generator

class PCACodec:
    """A linear autoencoder: the top-k principal components of clean images, unit-scaled."""

    def __init__(self, x, k=64, seed=0):
        flat = x.reshape(len(x), -1).float()
        self.mean = flat.mean(0)
        torch.manual_seed(seed)
        _, _, self.v = torch.pca_lowrank(flat - self.mean, q=k, center=False)
        self.scale = ((flat - self.mean) @ self.v).std(0).clamp_min(1e-6)

    def encode(self, x):
        return ((x.reshape(len(x), -1) - self.mean) @ self.v) / self.scale

    def decode(self, z):
        return ((z * self.scale) @ self.v.T + self.mean).reshape(-1, 1, 28, 28).clamp(-1, 1)


def train_generator(z, y, steps, seed, batch=128, lr=1e-3, width=512, p_uncond=0.1):
    """A class-conditional ε-MLP on latents z (class 10 = the null class for CFG), EMA weights."""
    from practicum.select.nets import DiffusionProxy

    torch.manual_seed(seed)
    den = DiffusionProxy((z.shape[1],), 11, width=width)
    ema = [p.detach().clone() for p in den.parameters()]
    decay = min(0.999, 1 - 10 / max(steps, 10))
    opt = torch.optim.AdamW(den.parameters(), lr=lr, weight_decay=0.0)
    abar = den.alphas_cumprod
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 100) * (1 - step / steps) ** 0.5
        idx = torch.randint(len(z), (batch,), generator=g)
        t = torch.randint(0, len(abar), (batch,), generator=g)
        noise = torch.randn(batch, z.shape[1], generator=g)
        a = abar[t][:, None]
        labels = torch.where(torch.rand(batch, generator=g) < p_uncond, 10, y[idx])
        loss = F.mse_loss(den.eps(a.sqrt() * z[idx] + (1 - a).sqrt() * noise, t, labels), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(den.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for e, p in zip(ema, den.parameters()):
                e.lerp_(p, 1 - decay)
    with torch.no_grad():
        for e, p in zip(ema, den.parameters()):
            p.copy_(e)
    return den.eval()


@torch.no_grad()
def generate(den, n_per_class, seed, steps=50, cfg=2.0):
    """Deterministic DDIM (η = 0) with classifier-free guidance; latents clamped to ±6 (unit-scaled, unbounded)."""
    labels = torch.arange(10).repeat_interleave(n_per_class)
    abar = den.alphas_cumprod.double()
    times = torch.linspace(len(abar) - 1, 0, steps).round().long()
    x = torch.randn(len(labels), den.dim, generator=torch.Generator().manual_seed(seed))
    null = torch.full_like(labels, 10)
    for i, t in enumerate(times):
        tt = t.expand(len(labels))
        e_c, e_u = den.eps(x, tt, labels), den.eps(x, tt, null)
        eps = e_u + cfg * (e_c - e_u)
        a = abar[t].float()
        x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-6, 6)
        a_next = abar[times[i + 1]].float() if i + 1 < len(times) else torch.tensor(1.0)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
    return x, labels


# ---------------------------------------------------------------- rankings and selections

def rater_rankings(pool, holdout, kinds, harmful_kinds, seed, steps, smoke):
    """The seed's trained-rater ratings, the untrained rater's, the proxy-loss ranking, and the gates."""
    from practicum.select.gates import rater_gates
    from practicum.select.pool import MemoryPool
    from practicum.select.rater import RaterSettings, initial_rater, proxy_losses, rate, train_rater

    epochs = 10
    settings = RaterSettings(proxy="diffusion", diffusion_model="tiny", epochs=2 if smoke else epochs,
                             iterations_per_epoch=2 if smoke else max(1, steps // epochs),
                             proxy_warmup=10 if smoke else 500, seed=seed)
    trainer = train_rater(settings, MemoryPool.from_dataset(pool), MemoryPool.from_dataset(holdout))
    x, y = pool.images, pool.labels
    untrained = initial_rater(settings, tuple(x.shape[1:]), 10)
    rankings = {"rater": rate(trainer.rater, x, y, mode="instance"),
                "untrained": rate(untrained, x, y, mode="instance"),
                "loss": -proxy_losses(trainer, x, y, seed=seed)}
    gates = rater_gates(trainer, x, y, kinds=kinds, harmful_kinds=harmful_kinds, seed=seed)
    return rankings, gates


def pixel_typicality(images, labels):
    """Minus each image's pixel distance to its class mean: the "no learning at all" ranking."""
    flat = images.reshape(len(images), -1).double()
    means = torch.stack([flat[labels == c].mean(0) for c in range(10)])
    return -(flat - means[labels]).norm(dim=1).numpy()


def selection(arm, rankings, labels, seed):
    """The indices of an arm (every one class-balanced)."""
    base = arm.split("@")[0]
    keep = 0.5 if base.endswith("-50") else 0.2
    n = len(labels)
    if base == "full":
        return np.arange(n)
    source = dict(EQUAL_STEPS).get(base) or "rater"
    strategy = ("random" if base.startswith("random") else "top-k" if base.startswith("top-k")
                else "shift-gsample")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sel.SelectionWarning)
        return sel.select(strategy, rankings[source] if strategy != "random" else np.zeros(n), keep,
                          labels=labels, balance=True, seed=seed, direction="higher_is_better")


def arm_steps(arm, steps, size, pool_size):
    return max(1, round(steps * size / pool_size)) if arm.endswith("@eq-epochs") else steps


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float64).tobytes()).hexdigest()


# ---------------------------------------------------------------- summaries

def summarise(result):
    from practicum.select.seed_stats import paired_difference, summarise_arms

    per_seed = {s: run["arms"] for s, run in result["runs"].items()}
    result["summary"] = summarise_arms(per_seed, METRICS)
    result["paired"] = {f"{a} - {b}": {m: paired_difference(per_seed, a, b, m) for m in METRICS[:3]}
                        for a, b in PAIRS}
    result["aims"] = aims(result)


def aims(result):
    """The issue's "done when" and aims, as measured (None until the arms ran)."""
    s, p = result["summary"], result["paired"]

    def mean(arm, metric="fd"):
        return s.get(arm, {}).get(metric, {}).get("mean")

    def pair(key, metric="fd"):
        return (p.get(key) or {}).get(metric)

    out = {}
    full, sg50 = mean("full"), mean("shift-gsample-50")
    d = pair("shift-gsample-50 - full")
    if full and sg50 is not None and d and d["ci"]:
        out["sg50_fd_at_most_0.93x_full"] = {"ratio": sg50 / full, "paired_ci": d["ci"],
                                             "met": sg50 <= 0.93 * full and d["ci"][1] < 0}
    if mean("shift-gsample-20") is not None and mean("random-50") is not None:
        out["sg20_fd_at_most_random50"] = {"sg20": mean("shift-gsample-20"), "random50": mean("random-50"),
                                           "met": mean("shift-gsample-20") <= mean("random-50")}
    d_fd, d_h = pair("shift-gsample-20 - untrained-sg-20"), pair("shift-gsample-20 - untrained-sg-20", "harmful_share")
    if d_fd and d_h and d_fd["ci"] and d_h["ci"]:
        out["trained_beats_untrained_sg20"] = {"fd_ci": d_fd["ci"], "harmful_share_ci": d_h["ci"],
                                               "met": d_fd["ci"][1] < 0 and d_h["ci"][1] < 0}
    gates = [run["gates"] for run in result["runs"].values() if "gates" in run]
    if gates:
        out["rater_init_spearman_below_0.5"] = {"values": [g["init_spearman"] for g in gates],
                                                "met": all(g["init_spearman"] < 0.5 for g in gates)}
    between = result.get("rater_between_seeds")
    if between:
        out["rater_between_seeds_above_0.5"] = {"values": between, "met": min(between) > 0.5}
    return out


def between_seeds(out_dir: Path, seeds, labels):
    """Spearman of within-class rater ranks between consecutive seeds' saved ratings."""
    from practicum.select.gates import spearman, within_class

    files = [out_dir / f"rater_seed{s}.npy" for s in seeds]
    have = [np.load(f) for f in files if f.exists()]
    return [round(spearman(within_class(a, labels), within_class(b, labels)), 4) for a, b in zip(have, have[1:])]


def markdown(result) -> str:
    def ms(entry, digits=1):
        if entry is None:
            return ""
        std = "" if entry["std"] is None else f" ± {entry['std']:.{digits}f}"
        return f"{entry['mean']:.{digits}f}{std}"

    lines = ["| arm | images | steps | seeds | FD ↓ | cond. acc. | harmful share | duplicate share |",
             "|---|---|---|---|---|---|---|---|"]
    for arm in [a for a in ARMS if a in result["summary"]]:
        row = result["summary"][arm]
        first = next(run["arms"][arm] for run in result["runs"].values() if arm in run["arms"])
        lines.append(f"| {arm} | {first['size']} | {first['steps']} | {len(row['fd']['seeds'])} | {ms(row['fd'])} | "
                     f"{ms(row['cond_accuracy'], 3)} | {ms(row['harmful_share'], 3)} | "
                     f"{ms(row['duplicate_share'], 3)} |")
    lines += ["", "| paired difference (per seed) | seeds (df) | FD | cond. acc. | harmful share |", "|---|---|---|---|---|"]
    for key, by_metric in result["paired"].items():
        if by_metric["fd"] is None:
            continue
        cells = []
        for metric, digits in (("fd", 1), ("cond_accuracy", 3), ("harmful_share", 3)):
            d = by_metric[metric]
            ci = "" if d["ci"] is None else f" [{d['ci'][0]:+.{digits}f}, {d['ci'][1]:+.{digits}f}]"
            cells.append(f"{d['mean']:+.{digits}f}{ci}")
        lines.append(f"| {key} | {len(by_metric['fd']['seeds'])} ({by_metric['fd']['df']}) | " + " | ".join(cells) + " |")
    lines += ["", "| seed | init Spearman | loss Spearman | harmful rank | pure_noise | mosaic | label_flip | duplicate | clean | passed |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for seed, run in sorted(result["runs"].items(), key=lambda kv: int(kv[0])):
        g = run.get("gates")
        if g:
            k = g.get("kind_rank", {})
            lines.append(f"| {seed} | {g['init_spearman']:+.2f} | {g['loss_spearman']:+.2f} | {g.get('harmful_rank', float('nan')):.2f} | "
                         + " | ".join(f"{k.get(n, float('nan')):.2f}" for n in ("pure_noise", "mosaic", "label_flip", "duplicate", "clean"))
                         + f" | {g['passed']} |")
    lines += ["", f"rater between seeds (Spearman, consecutive seeds): {result.get('rater_between_seeds')}",
              f"aims: {json.dumps(result.get('aims'))}"]
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pool-size", type=int, default=10000, help="rows of Fashion train the pool is built from")
    parser.add_argument("--holdout", type=int, default=3000, help="clean val rows the rater trains against")
    parser.add_argument("--steps", type=int, default=3000, help="generator steps of every equal-steps arm")
    parser.add_argument("--rater-steps", type=int, default=1000, help="rater steps (10 epochs)")
    parser.add_argument("--per-class", type=int, default=200, help="samples per class per arm (FD on 2,000)")
    parser.add_argument("--judge-epochs", type=int, default=2)
    parser.add_argument("--judge-rows", type=int, default=20000, help="clean Fashion train rows the judge learns from")
    parser.add_argument("--arms", default="", help="comma list of arms (default: all)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script runs")
    parser.add_argument("--results", type=Path, default=None, help="also write the JSON here after every arm")
    parser.add_argument("--table", action="store_true", help="print the markdown tables of DIR's JSON and stop")
    args = parser.parse_args()
    if args.table:
        print(markdown(json.loads((args.out / "select_fashion.json").read_text())))
        return
    wanted = [a.strip() for a in args.arms.split(",") if a.strip()] or list(ARMS)
    if set(wanted) - set(ARMS):
        parser.error(f"unknown arms {sorted(set(wanted) - set(ARMS))}; choose from {list(ARMS)}")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "select_fashion.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    if result and result.get("layout") != LAYOUT:
        raise SystemExit(f"{path} is from an earlier design of this benchmark; use another --out")
    result.update(layout=LAYOUT, settings={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                  paper_fid=PAPER_FID)
    result.setdefault("runs", {})
    t0 = time.time()

    smoke = args.smoke
    train, val, test = load_fashion("train"), load_fashion("val"), load_fashion("test")
    rows = np.sort(np.random.default_rng(0).permutation(len(train))[:600 if smoke else args.pool_size])
    subset = type(train)(train.images[rows], train.labels[rows], train.ids[rows], train.class_names)
    pool, info = build_web_pool(subset, duplicate_sources=max(20, round(300 * len(subset) / 50000)))
    holdout = clean_holdout(val, 200 if smoke else args.holdout)
    codec = PCACodec(val.images)  # fixed for every arm: fitted once on clean data
    if smoke:
        rows = np.random.default_rng(4).permutation(len(test))[:500]
        test = type(test)(test.images[rows], test.labels[rows], test.ids[rows], test.class_names)
    labels, kinds, harmful = pool.labels.numpy(), info["kind"], info["harmful"]
    latents = codec.encode(pool.images)
    result["pool"] = {"size": len(pool), "harmful_share": float(harmful.mean()), "holdout": len(holdout),
                      "test_rows": len(test), "kinds": {k: int((kinds == k).sum()) for k in sorted(set(kinds))}}
    typicality = pixel_typicality(pool.images, pool.labels)

    start = time.time()
    judge_rows = np.random.default_rng(3).permutation(len(train))[:2000 if smoke else args.judge_rows]
    judge = load_or_train_judge(args.out / "judge.safetensors", train.images[judge_rows], train.labels[judge_rows],
                                1 if smoke else args.judge_epochs)
    result.setdefault("judge_seconds", round(time.time() - start, 1))
    real_feats, real_logits = judge_out(judge, test.images)
    result["judge_test_accuracy"] = float((real_logits.argmax(1) == test.labels).float().mean())
    cov = np.cov(real_feats, rowvar=False)
    real_stats = (real_feats.mean(0), _sqrt_psd(cov), float(np.trace(cov)))
    # the codec's own ceiling: FD of decoded clean test images (no generator)
    result["codec_fd_on_test"] = frechet(judge_out(judge, codec.decode(codec.encode(test.images)))[0], real_stats)
    print(f"judge: test accuracy {result['judge_test_accuracy']:.3f}; the codec's own FD on test "
          f"{result['codec_fd_on_test']:.2f} ({time.time() - start:.0f}s)", flush=True)

    def save():
        result["rater_between_seeds"] = between_seeds(args.out, range(args.seeds), labels)
        summarise(result)
        result["seeds"] = sorted(int(s) for s in result["runs"])
        atomic_write_json(path, result)
        if args.results:
            atomic_write_json(args.results, result)

    for seed in range(args.seeds):
        run = result["runs"].setdefault(str(seed), {"arms": {}})
        files = {name: args.out / f"{name}_seed{seed}.npy" for name in ("rater", "untrained", "loss")}
        if not all(f.exists() for f in files.values()):
            start = time.time()
            rankings, gates = rater_rankings(pool, holdout, kinds, ALWAYS_HARMFUL, seed,
                                             args.rater_steps, smoke)
            for name, file in files.items():
                np.save(file, rankings[name])
            run["gates"], run["rater_seconds"] = gates, round(time.time() - start, 1)
            print(f"seed {seed} rater ({run['rater_seconds']:.0f}s): init {gates['init_spearman']:+.2f} "
                  f"loss {gates['loss_spearman']:+.2f} kinds {json.dumps(gates.get('kind_rank'))}", flush=True)
        rankings = {name: np.load(file) for name, file in files.items()}
        rankings["typicality"] = typicality
        run["ranking_sha256"] = {name: sha256(r) for name, r in rankings.items()}
        save()
        for arm in wanted:
            if arm in run["arms"]:
                continue
            index = selection(arm, rankings, labels, seed)
            steps = arm_steps(arm, 40 if smoke else args.steps, len(index), len(pool))
            start = time.time()
            den = train_generator(latents[index], pool.labels[index], steps, seed)
            z, want = generate(den, 10 if smoke else args.per_class, seed=1 + seed)
            feats, logits = judge_out(judge, codec.decode(z))
            chosen = kinds[index]
            run["arms"][arm] = {
                "size": len(index), "steps": steps, "fd": frechet(feats, real_stats),
                "cond_accuracy": float((logits.argmax(1) == want).float().mean()),
                "harmful_share": float(harmful[index].mean()), "duplicate_share": float((chosen == "duplicate").mean()),
                "kind_share": {k: round(float((chosen == k).mean()), 4) for k in sorted(set(kinds))},
                "selection_sha256": hashlib.sha256(np.sort(index).astype(np.int64).tobytes()).hexdigest(),
                "seconds": round(time.time() - start, 1)}
            save()
            r = run["arms"][arm]
            print(f"seed {seed} {arm:28s} n={len(index):6d} steps={steps:5d} FD={r['fd']:7.2f} "
                  f"cond={r['cond_accuracy']:.3f} harmful={r['harmful_share']:.3f} ({r['seconds']:.0f}s)", flush=True)
    result["seconds_this_invocation"] = round(time.time() - t0, 1)
    save()


if __name__ == "__main__":
    main()
