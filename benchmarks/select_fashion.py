"""Alchemist where the paper works: select data for a *generator* on the web-like Fashion pool.

    python benchmarks/select_fashion.py --out DIR [--device cuda] [--steps 1500] [--seeds 3] [--smoke]

1. Pool: `practicum.select.webpool.build_web_pool` on Fashion train (50k, or --pool-size rows; graded,
   mostly benign defects, ~19 % clearly harmful) and a clean 3 % hold-out (of val) for the rater. Built
   once (seed 0) and shared by every seed.
2. Rater, per seed: the diffusion proxy (tiny ε-MLP, ε-MSE over K = 4 fixed draws per id), first-order
   rule, 10 epochs over the hold-out, the epoch-5 checkpoint (the paper's LAION choice); ratings in
   instance mode (batch-free). Reported: mean rank percentile per defect kind, pool-wide and within class.
3. Arms (class-balanced, the CLI default), per seed, in the priority order of `ARM_TIERS`: full, random /
   Shift-Gsample / Reverse at 50 %, random / Top-K / Shift-Gsample at 20 %; then the 20 % Block sweep
   (s10, s30, s50, s70) and the equal-epoch arms (`@eq-epochs`: the subset trained for steps × subset /
   pool, as many epochs as full: the paper's comparison); then Gsample 20 %, Top-K 50 %, Shift-Gsample
   m2_std3 50 %, a filter arm (pHash dedup ∩ no confident-learning label issue ∩ rating not in its
   class's bottom 10 %, then random 50 %) and full at 2× steps. Each trains a fresh class-conditional
   generator (the Fashion UNet, or on a CPU budget a PCA-latent ε-MLP) with the seed's generator seed.
4. Judge (fixed, seed 123): a small CNN trained on clean Fashion train; 128-d penultimate features. Per
   arm: Fréchet distance to the real test split (with a percentile bootstrap over generated samples),
   precision/recall (k = 3 manifolds), conditional accuracy (judge on class-conditioned samples) and CAS.
5. Across seeds (`practicum.select.seed_stats`): per-arm mean ± std (ddof 1) and paired per-seed
   differences with Student-t intervals (df = seeds − 1) for the pairs in `PAIRS`.

Writes DIR/select_fashion.json (and --results) after every (seed, arm); a rerun skips finished ones.
A JSON in the earlier one-seed layout is read as seed 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from practicum.data import atomic_write_json, load_fashion  # noqa: E402
from practicum.select import selectors as sel  # noqa: E402
from practicum.select.webpool import build_web_pool, clean_holdout, rank_by_kind  # noqa: E402

PAPER = {"Full": 17.48, "Random-50": 19.70, "Alchemist-50": 16.20, "Top-K-20": 45, "Block s30-50 @20": 19.0,
         "Random-20": 21.2, "Gsample-20": 19.8, "Shift-Gsample-20": 18.6}


# ---------------------------------------------------------------- judge

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


def train_classifier(x, y, device, epochs=3, seed=0, batch=256):
    torch.manual_seed(seed)
    model = Judge().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    x, y = x.to(device), y.to(device)
    g = torch.Generator(device="cpu").manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(batch):
            loss = F.cross_entropy(model(x[idx.to(device)]), y[idx.to(device)])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def judge_out(model, x, device, batch=1000):
    feats, logits = [], []
    for part in x.split(batch):
        h = model.body(part.to(device))
        feats.append(h.double().cpu())
        logits.append(model.head(h).cpu())
    return torch.cat(feats).numpy(), torch.cat(logits)


# ---------------------------------------------------------------- metrics

def _sqrt_psd(m):
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet(mu1, s1, mu2, s2_sqrt, tr2):
    inner = s2_sqrt @ s1 @ s2_sqrt
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + tr2 - 2 * np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0, None)).sum())


def fd_with_ci(gen, real_stats, boot=200, seed=0):
    mu2, s2_sqrt, tr2 = real_stats
    point = frechet(gen.mean(0), np.cov(gen, rowvar=False), mu2, s2_sqrt, tr2)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(boot):
        g = gen[rng.integers(0, len(gen), len(gen))]
        draws.append(frechet(g.mean(0), np.cov(g, rowvar=False), mu2, s2_sqrt, tr2))
    return point, [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))]


def precision_recall(real, gen, device, k=3):
    r = torch.as_tensor(real, device=device, dtype=torch.float32)
    g = torch.as_tensor(gen, device=device, dtype=torch.float32)
    radius_r = torch.cdist(r, r).kthvalue(k + 1, dim=1).values
    radius_g = torch.cdist(g, g).kthvalue(k + 1, dim=1).values
    precision = (torch.cdist(g, r) <= radius_r[None]).any(dim=1).float().mean()
    recall = (torch.cdist(r, g) <= radius_g[None]).any(dim=1).float().mean()
    return float(precision), float(recall)


# ---------------------------------------------------------------- generator

# The CPU-affordable generator: the Fashion preset's folded UNet, narrower and without attention.
SMALL_UNET = {"block_out_channels": [32, 64], "down_block_types": ["DownBlock2D", "DownBlock2D"],
              "up_block_types": ["UpBlock2D", "UpBlock2D"]}


def train_generator(x, y, steps, device, seed=0, batch=128, lr=1e-3, warmup=100, ema_decay=0.999, p_uncond=0.1,
                    small=False):
    from practicum.diffusion.builtin import FASHION_FOLD, FASHION_UNET_CONFIG, builtin_denoiser

    torch.manual_seed(seed)
    config = {**FASHION_UNET_CONFIG, **(SMALL_UNET if small else {})}
    ema_decay = min(ema_decay, 1 - 10 / max(steps, 10))  # short runs: an EMA horizon of ~steps/10
    den = builtin_denoiser(config, num_classes=10, image_shape=(1, 28, 28), fold=FASHION_FOLD).to(device)
    den.train()
    ema = [p.detach().clone() for p in den.parameters()]
    opt = torch.optim.AdamW(den.parameters(), lr=lr, weight_decay=0.0)
    abar = den.alphas_cumprod.to(device).float()
    x, y = x.to(device), y.to(device)
    g = torch.Generator(device="cpu").manual_seed(seed)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        idx = torch.randint(len(x), (batch,), generator=g).to(device)
        x0 = den.encode(x[idx])
        t = torch.randint(0, len(abar), (batch,), generator=g).to(device)
        noise = torch.randn(x0.shape, generator=g).to(device)
        a = abar[t].view(-1, *[1] * (x0.ndim - 1))
        labels = torch.where(torch.rand(batch, generator=g).to(device) < p_uncond, den.null_class, y[idx])
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            eps = den(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, labels)
        loss = F.mse_loss(eps.float(), noise)
        _step_with_ema(den, opt, loss, ema, ema_decay)
    return _with_ema_weights(den, ema)


def _step_with_ema(den, opt, loss, ema, decay):
    """One clipped optimiser step of a generator, then its EMA weights move toward the new ones."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(den.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        for e, p in zip(ema, den.parameters()):
            e.lerp_(p, 1 - decay)


@torch.no_grad()
def _with_ema_weights(den, ema):
    """The generator with its EMA weights, ready to sample."""
    for e, p in zip(ema, den.parameters()):
        p.copy_(e)
    return den.eval()


class PCACodec:
    """A linear autoencoder: the top-k principal components of the training images, unit-scaled."""

    def __init__(self, x, k=64, seed=0):
        flat = x.reshape(len(x), -1).float()
        self.mean = flat.mean(0)
        torch.manual_seed(seed)
        _, _, self.v = torch.pca_lowrank(flat - self.mean, q=k, center=False)
        z = (flat - self.mean) @ self.v
        self.scale = z.std(0).clamp_min(1e-6)

    def encode(self, x):
        return ((x.reshape(len(x), -1) - self.mean) @ self.v) / self.scale

    def decode(self, z):
        return ((z * self.scale) @ self.v.T + self.mean).reshape(-1, 1, 28, 28).clamp(-1, 1)


def train_latent_generator(x, y, steps, device, seed=0, batch=128, lr=1e-3, width=512, k=64):
    """CPU-budget latent diffusion: PCA codec fitted on the arm's own data + a class-conditional ε-MLP in it."""
    codec = PCACodec(x, k, seed)
    den = train_mlp_generator(codec.encode(x).reshape(len(x), 1, 1, k), y, steps, device, seed, batch, lr, width,
                              shape=(1, 1, k))
    return den, codec


def train_mlp_generator(x, y, steps, device, seed=0, batch=128, lr=1e-3, width=512, p_uncond=0.1,
                        shape=(1, 28, 28)):
    """The CPU-budget generator: a class-conditional ε-MLP (`DiffusionProxy`, linear β), EMA weights."""
    from practicum.select.nets import DiffusionProxy

    torch.manual_seed(seed)
    den = DiffusionProxy(shape, 11, width=width).to(device)  # class 10 = the null class for CFG
    ema = [p.detach().clone() for p in den.parameters()]
    decay = min(0.999, 1 - 10 / max(steps, 10))
    opt = torch.optim.AdamW(den.parameters(), lr=lr, weight_decay=0.0)
    abar = den.alphas_cumprod
    flat, y = x.reshape(len(x), -1).to(device), y.to(device)
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 100) * (1 - step / steps) ** 0.5
        idx = torch.randint(len(flat), (batch,), generator=g)
        t = torch.randint(0, len(abar), (batch,), generator=g)
        noise = torch.randn(batch, flat.shape[1], generator=g)
        a = abar[t][:, None]
        labels = torch.where(torch.rand(batch, generator=g) < p_uncond, 10, y[idx])
        loss = F.mse_loss(den.eps(a.sqrt() * flat[idx] + (1 - a).sqrt() * noise, t, labels), noise)
        _step_with_ema(den, opt, loss, ema, decay)
    return _with_ema_weights(den, ema)


@torch.no_grad()
def generate_mlp(den, n_per_class, seed, steps=50, cfg=2.0, clip=True):
    """Deterministic DDIM (η = 0) with classifier-free guidance, x̂0 clipped to [-1, 1] when `clip`."""
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
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        x0 = x0.clamp(-1, 1) if clip else x0.clamp(-6, 6)  # latents are unit-scaled, not bounded
        a_next = abar[times[i + 1]].float() if i + 1 < len(times) else torch.tensor(1.0)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
    return x, labels


def generate(den, n_per_class, seed, device, steps=50, cfg=2.0):
    from practicum.diffusion.sampler import sample

    labels = torch.arange(10).repeat_interleave(n_per_class)
    with torch.no_grad():
        out = sample(den, labels, steps=steps, cfg_scale=cfg, seed=seed, batch_size=1000)
    images = out.images if hasattr(out, "images") else out[0]
    return images.float().cpu().clamp(-1, 1), labels


# ---------------------------------------------------------------- rater and selections

def rate_pool(pool, holdout, smoke, seed=0):
    from practicum.select.pool import MemoryPool
    from practicum.select.rater import RaterSettings, rate, train_rater

    settings = RaterSettings(proxy="diffusion", diffusion_model="tiny", epochs=2 if smoke else 10,
                             iterations_per_epoch=2 if smoke else None, seed=seed)
    snapshot = {}

    def keep(trainer, record):
        if record["epoch"] <= 4:  # the paper's LAION subset used the epoch-5 checkpoint (index 4)
            snapshot["state"] = {k: v.clone() for k, v in trainer.rater.state_dict().items()}
            snapshot["epoch"] = record["epoch"]

    trainer = train_rater(settings, MemoryPool.from_dataset(pool), MemoryPool.from_dataset(holdout), on_epoch=keep)
    trainer.rater.load_state_dict(snapshot["state"])
    return rate(trainer.rater, pool.images, pool.labels, mode="instance"), snapshot["epoch"]


def cross_fitted_probs(x, y, device, folds=2, seed=0):
    """Out-of-sample class probabilities: each fold scored by a CNN trained on the others."""
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, len(y))
    probs = np.zeros((len(y), 10))
    for f in range(folds):
        model = train_classifier(x[fold != f], y[fold != f], device, epochs=2, seed=seed + f)
        _, logits = judge_out(model, x[fold == f], device)
        probs[fold == f] = torch.softmax(logits, 1).numpy()
    return probs


def filter_arm(pool, ratings, device, seed=0):
    from practicum.select.dedup import hash_dedup, perceptual_hash
    from practicum.select.filters import intersect, select_within, threshold
    from practicum.select.label_issues import find_label_issues

    labels = pool.labels.numpy()
    unique = hash_dedup(perceptual_hash(pool.images.numpy()), max_distance=2, priority=ratings)
    if device.type == "cuda":
        probs = cross_fitted_probs(pool.images, pool.labels, device)
    else:  # CPU budget: logistic regression on 14×14 pixels, 3-fold out-of-sample
        from practicum.select.label_issues import out_of_sample_probs

        small = F.avg_pool2d(pool.images, 2).reshape(len(labels), -1).numpy()
        probs = out_of_sample_probs(small, labels, folds=3)
    clean = ~find_label_issues(probs, labels)
    rated = threshold(sel.normalise_within_class(ratings, labels), low=0.1)
    mask = intersect(unique, clean, rated)
    chosen = select_within(mask, "random", ratings, min(int(mask.sum()), len(labels) // 2), labels=labels,
                           balance=True, seed=seed)
    return chosen, {"passed_dedup": int(unique.sum()), "passed_label_check": int(clean.sum()),
                    "passed_all": int(mask.sum())}


def selections(ratings, labels, n, seed=0):
    def bal(strategy, keep, **kw):
        return sel.select(strategy, ratings, keep, labels=labels, balance=True, seed=seed,
                          direction="higher_is_better", **kw)

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sel.SelectionWarning)  # m2_std3's bottom warning is the point of that arm
        return {
            "full": np.arange(n),
            "random-50": sel.random_subset(n, 0.5, seed),
            "shift-gsample-50": bal("shift-gsample", 0.5),
            "top-k-50": bal("top-k", 0.5),
            "random-20": sel.random_subset(n, 0.2, seed),
            "top-k-20": bal("top-k", 0.2),
            "shift-gsample-20": bal("shift-gsample", 0.2),
            "gsample-20": bal("gsample", 0.2),
            **{f"block-s{s}-20": bal("block", 0.2, start=s / 100) for s in (10, 30, 50, 70)},
            "reverse-50": bal("bottom-k", 0.5),
            "shift-gsample-m2std3-50": bal("shift-gsample", 0.5, shape="m2_std3"),
        }


# Arms in priority order: a run that is cut short has the headline comparisons for every seed first.
# `@eq-epochs` trains the subset for as many epochs as full gets (steps × subset / pool: the paper's
# comparison, and the cheap way to run it); `@2x-steps` is full for twice the steps (equal epochs vs 50 %).
ARM_TIERS = (
    ("full", "random-50", "shift-gsample-50", "reverse-50", "random-20", "top-k-20", "shift-gsample-20"),
    ("block-s10-20", "block-s30-20", "block-s50-20", "block-s70-20", "shift-gsample-50@eq-epochs",
     "random-50@eq-epochs", "shift-gsample-20@eq-epochs", "random-20@eq-epochs"),
    ("gsample-20", "top-k-50", "shift-gsample-m2std3-50", "filter-dedup-cl-50", "full@2x-steps"),
)
METRICS = ("fd", "precision", "recall", "cond_accuracy", "cas", "harmful_share", "duplicate_share")
PAIRS = (("shift-gsample-50", "full"), ("shift-gsample-50", "random-50"), ("shift-gsample-20", "top-k-20"),
         ("shift-gsample-20", "random-20"), ("reverse-50", "shift-gsample-50"), ("shift-gsample-20", "block-s30-20"),
         ("shift-gsample-50@eq-epochs", "full"), ("shift-gsample-50@eq-epochs", "random-50@eq-epochs"),
         ("shift-gsample-20@eq-epochs", "random-20@eq-epochs"))


def arm_steps(name, steps, size, pool_size):
    if name.endswith("@2x-steps"):
        return 2 * steps
    if name.endswith("@eq-epochs"):
        return max(1, round(steps * size / pool_size))
    return steps


def migrate(result, out):
    """The one-seed layout (arms at the top, ratings.npy) becomes seed 0 of the per-seed layout."""
    if "arms" in result and "runs" not in result:
        keys = ("arms", "rater", "ratings_by_kind", "ratings_by_kind_within_class", "filter", "composition")
        result["runs"] = {"0": {k: result.pop(k) for k in keys if k in result}}
        if (out / "ratings.npy").exists() and not (out / "ratings_seed0.npy").exists():
            (out / "ratings.npy").rename(out / "ratings_seed0.npy")
    result.setdefault("runs", {})
    return result


def summarise(result):
    from practicum.select.seed_stats import paired_difference, summarise_arms

    per_seed = {s: run["arms"] for s, run in result["runs"].items()}
    result["summary"] = summarise_arms(per_seed, METRICS)
    result["paired"] = {f"{a} - {b}": {m: paired_difference(per_seed, a, b, m) for m in METRICS[:5]}
                        for a, b in PAIRS}


def markdown(result) -> str:
    """The across-seed table and the paired differences, as docs/benchmarks.md shows them."""
    def ms(entry, scale=1.0, digits=1):
        if entry is None:
            return ""
        std = "" if entry["std"] is None else f" ± {entry['std'] * scale:.{digits}f}"
        return f"{entry['mean'] * scale:.{digits}f}{std}"

    order = [a for tier in ARM_TIERS for a in tier]
    lines = ["| arm | images | steps | seeds | FD ↓ | precision | recall | cond. acc. | CAS | harmful share |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for arm in sorted(result["summary"], key=lambda a: order.index(a) if a in order else len(order)):
        row = result["summary"][arm]
        first = next(run["arms"][arm] for run in result["runs"].values() if arm in run["arms"])
        lines.append(f"| {arm} | {first['size']} | {first['steps']} | {len(row['fd']['seeds'])} | {ms(row['fd'])} | "
                     f"{ms(row['precision'], digits=3)} | {ms(row['recall'], digits=3)} | "
                     f"{ms(row['cond_accuracy'], digits=3)} | {ms(row['cas'], digits=3)} | "
                     f"{ms(row['harmful_share'], digits=3)} |")
    lines += ["", "| paired difference (per seed) | seeds (df) | FD | cond. acc. | CAS | precision | recall |",
              "|---|---|---|---|---|---|---|"]
    for pair, by_metric in result["paired"].items():
        if by_metric["fd"] is None:
            continue
        cells = []
        for metric, digits in (("fd", 1), ("cond_accuracy", 3), ("cas", 3), ("precision", 3), ("recall", 3)):
            d = by_metric[metric]
            ci = "" if d["ci"] is None else f" [{d['ci'][0]:+.{digits}f}, {d['ci'][1]:+.{digits}f}]"
            cells.append(f"{d['mean']:+.{digits}f}{ci}")
        fd = by_metric["fd"]
        lines.append(f"| {pair} | {len(fd['seeds'])} ({fd['df']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=1500, help="generator steps per arm (equal steps)")
    parser.add_argument("--per-class", type=int, default=200, help="samples per class per arm")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script runs")
    parser.add_argument("--pool-size", type=int, default=50000, help="rows of Fashion train the pool is built from")
    parser.add_argument("--small", action="store_true", help="the narrow attention-free UNet (CPU budget)")
    parser.add_argument("--generator", choices=("unet", "mlp", "latent"), default="unet",
                        help="unet: the Fashion preset's folded UNet; mlp: a class-conditional ε-MLP (CPU budget)")
    parser.add_argument("--batch", type=int, default=128, help="generator batch size")
    parser.add_argument("--sample-steps", type=int, default=50, help="DDIM steps when sampling")
    parser.add_argument("--judge-epochs", type=int, default=4)
    parser.add_argument("--mlp-width", type=int, default=512)
    parser.add_argument("--cas-test", type=int, default=10000, help="real test rows CAS is measured on")
    parser.add_argument("--arms", default="", help="comma list of arms to run (default: all, in priority order)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="seeds 0..N-1; each re-trains the rater, re-draws the selections and re-trains and "
                             "re-samples every arm's generator (the pool and the judge stay fixed)")
    parser.add_argument("--results", type=Path, default=None, help="also write the JSON here after every arm")
    parser.add_argument("--table", action="store_true", help="print the markdown tables of DIR's JSON and stop")
    args = parser.parse_args()
    if args.table:
        print(markdown(json.loads((args.out / "select_fashion.json").read_text())))
        return
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "select_fashion.json"
    result = migrate(json.loads(path.read_text()) if path.exists() else {}, args.out)
    t0 = time.time()

    def save():
        summarise(result)
        result["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        result["paper_fid"] = PAPER
        result["seeds"] = sorted(int(s) for s in result["runs"])
        atomic_write_json(path, result)
        if args.results:
            atomic_write_json(args.results, result)

    train = load_fashion("train")
    test = load_fashion("test")
    if args.smoke or args.pool_size < len(train):
        keep = np.sort(np.random.default_rng(0).permutation(len(train))[:2000 if args.smoke else args.pool_size])
        train = type(train)(train.images[keep], train.labels[keep], train.ids[keep], train.class_names)
        rows = torch.as_tensor(np.random.default_rng(1).permutation(len(test))[:1000])
        test = type(test)(test.images[rows], test.labels[rows], test.ids[rows.numpy()], test.class_names)
    # the pool and the rater's hold-out are built once (seed 0) and shared by every seed
    pool, info = build_web_pool(train, duplicate_sources=max(20, round(300 * len(train) / 50000)))
    holdout = clean_holdout(load_fashion("val"), max(200, round(0.03 * len(train) / 10) * 10))  # 3 %
    result["pool"] = {"size": len(pool), "harmful_share": float(info["harmful"].mean()), "holdout": len(holdout)}
    labels = pool.labels.numpy()

    def seed_state(seed):
        """The seed's rater (trained once, ratings saved) and its selections."""
        run = result["runs"].setdefault(str(seed), {"arms": {}})
        file = args.out / f"ratings_seed{seed}.npy"
        if not file.exists() or args.smoke:
            start = time.time()
            ratings, epoch = rate_pool(pool, holdout, args.smoke, seed)
            np.save(file, ratings)
            run["rater"] = {"checkpoint_epoch": epoch, "seconds": round(time.time() - start, 1),
                            "class_rank_share": sel.class_rank_share(ratings, labels)}
            run["ratings_by_kind"] = rank_by_kind(ratings, info["kind"], info["harmful"])
            # the rater's label conditioning orders whole classes; what selection sees is the within-class order
            run["ratings_by_kind_within_class"] = rank_by_kind(
                sel.normalise_within_class(ratings, labels), info["kind"], info["harmful"])
            save()
            print(f"seed {seed} rater:", json.dumps(run["ratings_by_kind_within_class"]), flush=True)
        ratings = np.load(file)
        return run, ratings, selections(ratings, labels, len(pool), seed)

    judge = train_classifier(train.images, train.labels, device, epochs=1 if args.smoke else args.judge_epochs,
                             seed=123)
    real_feats, real_logits = judge_out(judge, test.images, device)
    result["judge_test_accuracy"] = float((real_logits.argmax(1) == test.labels).float().mean())
    mu2, s2 = real_feats.mean(0), np.cov(real_feats, rowvar=False)
    s2_sqrt = _sqrt_psd(s2)
    real_stats = (mu2, s2_sqrt, float(np.trace(s2)))
    pr_real = real_feats[np.random.default_rng(0).permutation(len(real_feats))[:2000]]

    # the test split is sorted by class: CAS uses a fixed random subset of it
    cas_rows = torch.as_tensor(np.random.default_rng(2).permutation(len(test))[:min(args.cas_test, len(test))])
    wanted = [a.strip() for a in args.arms.split(",") if a.strip()]
    known = [a for tier in ARM_TIERS for a in tier]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {known}")
    steps = 20 if args.smoke else args.steps
    per_class = 10 if args.smoke else args.per_class
    sample_steps = 10 if args.smoke else args.sample_steps
    states = {}
    for tier in ARM_TIERS:
        for seed in range(args.seeds):
            for name in tier:
                if (wanted and name not in wanted) or name in result["runs"].get(str(seed), {}).get("arms", {}):
                    continue
                if seed not in states:
                    states[seed] = seed_state(seed)
                run, ratings, arms = states[seed]
                base = name.split("@")[0]
                if base == "filter-dedup-cl-50" and base not in arms:
                    arms[base], run["filter"] = filter_arm(pool, ratings, device, seed)
                index = arms[base]
                n_steps = arm_steps(name, steps, len(index), len(pool))
                start = time.time()
                if args.generator == "mlp":
                    den = train_mlp_generator(pool.images[index], pool.labels[index], n_steps, device, seed=seed,
                                              batch=args.batch, width=args.mlp_width)
                    images, want = generate_mlp(den, per_class, seed=1 + seed, steps=sample_steps)
                    images = images.reshape(-1, 1, 28, 28).clamp(-1, 1)
                elif args.generator == "latent":
                    den, codec = train_latent_generator(pool.images[index], pool.labels[index], n_steps, device,
                                                        seed=seed, batch=args.batch, width=args.mlp_width)
                    z, want = generate_mlp(den, per_class, seed=1 + seed, steps=sample_steps, clip=False)
                    images = codec.decode(z)
                else:
                    den = train_generator(pool.images[index], pool.labels[index], n_steps, device, seed=seed,
                                          batch=args.batch, small=args.small)
                    images, want = generate(den, per_class, seed=1 + seed, device=device, steps=sample_steps)
                feats, logits = judge_out(judge, images, device)
                fd, ci = fd_with_ci(feats, real_stats, boot=20 if args.smoke else 200)
                precision, recall = precision_recall(pr_real, feats, device)
                cas_model = train_classifier(images, want, device, epochs=1 if args.smoke else 3, seed=7 + seed)
                _, test_logits = judge_out(cas_model, test.images[cas_rows], device)
                kinds = info["kind"][index]
                record = {
                    "size": len(index), "steps": n_steps, "fd": fd, "fd_ci95": ci, "precision": precision,
                    "recall": recall, "cond_accuracy": float((logits.argmax(1) == want).float().mean()),
                    "cas": float((test_logits.argmax(1) == test.labels[cas_rows]).float().mean()),
                    "harmful_share": float(info["harmful"][index].mean()),
                    "duplicate_share": float((kinds == "duplicate").mean()),
                    "seconds": round(time.time() - start, 1)}
                run["arms"][name] = record
                save()
                print(f"seed {seed} {name:28s} n={len(index):6d} steps={n_steps:5d} FD={fd:8.3f} "
                      f"P={precision:.3f} R={recall:.3f} cond={record['cond_accuracy']:.3f} CAS={record['cas']:.3f} "
                      f"harmful={record['harmful_share']:.3f} ({record['seconds']:.0f}s)", flush=True)
    result["seconds_this_invocation"] = round(time.time() - t0, 1)
    save()


if __name__ == "__main__":
    main()
