"""Why the diffusion-proxy rater does not rate the harmful kinds low on the web-like Fashion pool.

    python benchmarks/select_rater_analysis.py --run /work/sf_run3 [--pool-size 20000] [--train-iterations 50]

Reads the per-seed ratings `benchmarks/select_fashion.py` saved (ratings_seed*.npy, epoch-5 checkpoint)
on the same pool (rebuilt here: seed 0), and measures, within class (what class-balanced selection sees):
1. the mean rank percentile of each defect kind per seed (0 = top);
2. how much the seeds agree (Spearman of within-class percentiles between seeds);
3. how far the trained rater moved from its initialisation: Spearman between the epoch-5 ratings and the
   ratings of the same seed's *untrained* rater (the same constructor, no step taken);
4. what the order follows: Spearman of the rating with each image's pixel standard deviation and mean.
With --train-iterations N it also trains the rater with N iterations per epoch instead of one pass over
the 600-row hold-out (10), for --variant-seeds, and reports 1-3 for it (a budget check, see the docs).
Writes benchmarks/results/select_rater_analysis.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from practicum.data import atomic_write_json, load_fashion  # noqa: E402
from practicum.select import selectors as sel  # noqa: E402
from practicum.select.webpool import build_web_pool, clean_holdout, rank_by_kind  # noqa: E402

KINDS_SHOWN = ("clean", "duplicate", "blur", "downup", "low_contrast", "noise", "marks", "mosaic", "label_flip",
               "pure_noise", "(harmful)")


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def within(ratings, labels):
    return sel.normalise_within_class(ratings, labels)


def kind_ranks(ratings, labels, info):
    ranks = rank_by_kind(within(ratings, labels), info["kind"], info["harmful"])
    return {k: round(ranks[k]["mean_rank_pct"], 3) for k in KINDS_SHOWN if k in ranks}


def settings_for(seed, iterations=None, epochs=10, draws=4):
    from practicum.select.rater import RaterSettings

    return RaterSettings(proxy="diffusion", diffusion_model="tiny", epochs=epochs, iterations_per_epoch=iterations,
                         seed=seed, diffusion_draws=draws)


def untrained_ratings(pool, seed):
    from practicum.select.rater import RaterTrainer, rate

    trainer = RaterTrainer(settings_for(seed), tuple(pool.images.shape[1:]), 10)
    return rate(trainer.rater, pool.images, pool.labels, mode="instance")


def trained_ratings(pool, holdout, seed, iterations, draws=4):
    """The epoch-5 checkpoint of a rater trained with `iterations` per epoch (the 10-epoch lin0 schedule)."""
    from practicum.select.pool import MemoryPool
    from practicum.select.rater import RaterTrainer, rate

    settings = settings_for(seed, iterations, draws=draws)
    trainer = RaterTrainer(settings, tuple(pool.images.shape[1:]), 10)
    trainer.total_steps = settings.epochs * iterations
    train_pool, val_pool = MemoryPool.from_dataset(pool), MemoryPool.from_dataset(holdout)
    for epoch in range(5):  # epochs 0..4: the epoch-5 checkpoint the benchmark rates with
        trainer.run_epoch(epoch, train_pool, val_pool, iterations)
    losses = proxy_losses(trainer, pool)
    # split-half reliability of a row's ε-MSE: two independent sets of K draws (seeds 101, 202), correlated
    reliability = {k: round(float(np.corrcoef(proxy_losses(trainer, pool, k, 101), proxy_losses(trainer, pool, k, 202))[0, 1]), 3)
                   for k in (4, 32)}
    return rate(trainer.rater, pool.images, pool.labels, mode="instance"), losses, reliability


@torch.no_grad()
def proxy_losses(trainer, pool, k=None, draw_seed=None, batch=1000):
    """Each pool row's ε-MSE under the trained proxy over K draws (default: the rater's own fixed draws)."""
    from practicum.select.pool import diffusion_draws

    trainer.proxy.eval()
    k = trainer.settings.diffusion_draws if k is None else k
    seed = trainer.settings.seed if draw_seed is None else draw_seed
    out = []
    for start in range(0, len(pool), batch):
        draws = diffusion_draws(pool.ids[start:start + batch], int(np.prod(pool.images.shape[1:])), k,
                                len(trainer.proxy.alphas_cumprod), seed)
        out.append(trainer.proxy(pool.images[start:start + batch], pool.labels[start:start + batch], draws).numpy())
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the select_fashion.py output folder")
    parser.add_argument("--pool-size", type=int, default=20000)
    parser.add_argument("--train-iterations", type=int, default=0, help="also train a rater with N iterations/epoch")
    parser.add_argument("--variant-seeds", default="0,1")
    parser.add_argument("--draws", type=int, default=4, help="the variant's K (ε-MSE draws per id)")
    parser.add_argument("--skip-saved", action="store_true", help="only the variant, not the saved ratings")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "select_rater_analysis.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()

    train = load_fashion("train")
    keep = np.sort(np.random.default_rng(0).permutation(len(train))[:args.pool_size])
    train = type(train)(train.images[keep], train.labels[keep], train.ids[keep], train.class_names)
    pool, info = build_web_pool(train, duplicate_sources=max(20, round(300 * len(train) / 50000)))
    holdout = clean_holdout(load_fashion("val"), max(200, round(0.03 * len(train) / 10) * 10))
    labels = pool.labels.numpy()
    flat = pool.images.reshape(len(pool), -1).numpy()
    pixel_std, pixel_mean = flat.std(1), flat.mean(1)

    out: dict = {"pool": len(pool), "holdout": len(holdout),
                 "rater_steps_per_epoch": int(np.ceil(len(holdout) / 64)), "seeds": {}}
    seeds = sorted(int(p.stem.split("seed")[1]) for p in args.run.glob("ratings_seed*.npy"))
    trained = {s: np.load(args.run / f"ratings_seed{s}.npy") for s in seeds}
    for s in [] if args.skip_saved else seeds:
        init = untrained_ratings(pool, s)
        w_tr, w_init = within(trained[s], labels), within(init, labels)
        out["seeds"][str(s)] = {
            "kind_ranks_trained": kind_ranks(trained[s], labels, info),
            "kind_ranks_untrained": kind_ranks(init, labels, info),
            "spearman_trained_vs_untrained": round(spearman(w_tr, w_init), 3),
            "spearman_with_pixel_std": round(spearman(w_tr, pixel_std), 3),
            "spearman_with_pixel_mean": round(spearman(w_tr, pixel_mean), 3),
            "untrained_spearman_with_pixel_std": round(spearman(w_init, pixel_std), 3)}
        print(s, json.dumps(out["seeds"][str(s)]), flush=True)
    out["spearman_between_seeds"] = {} if args.skip_saved else {f"{a}-{b}": round(spearman(within(trained[a], labels), within(trained[b], labels)), 3)
                                     for i, a in enumerate(seeds) for b in seeds[i + 1:]}
    print("between seeds", out["spearman_between_seeds"], flush=True)

    if args.train_iterations:
        variant: dict = {"iterations_per_epoch": args.train_iterations, "draws": args.draws, "seeds": {}}
        ratings = {}
        for s in [int(v) for v in args.variant_seeds.split(",")]:
            start = time.time()
            ratings[s], losses, reliability = trained_ratings(pool, holdout, s, args.train_iterations, args.draws)
            init = untrained_ratings(pool, s)
            kinds = np.asarray(info["kind"])
            variant["seeds"][str(s)] = {
                "kind_ranks": kind_ranks(ratings[s], labels, info),
                "spearman_vs_untrained": round(spearman(within(ratings[s], labels), within(init, labels)), 3),
                "spearman_with_pixel_std": round(spearman(within(ratings[s], labels), pixel_std), 3),
                # the proxy's ε-MSE per kind (mean, and its within-class percentile: 1 = hardest)
                "proxy_loss_by_kind": {k: round(float(losses[kinds == k].mean()), 4) for k in KINDS_SHOWN
                                       if (kinds == k).any()},
                "proxy_loss_pct_by_kind": {k: round(float(within(losses, labels)[kinds == k].mean()), 3)
                                           for k in KINDS_SHOWN if (kinds == k).any()},
                "loss_split_half_reliability_by_draws": reliability,
                "spearman_rating_vs_proxy_loss": round(spearman(within(ratings[s], labels), within(losses, labels)), 3),
                "seconds": round(time.time() - start, 1)}
            print("variant", s, json.dumps(variant["seeds"][str(s)]), flush=True)
        keys = sorted(ratings)
        variant["spearman_between_seeds"] = {
            f"{a}-{b}": round(spearman(within(ratings[a], labels), within(ratings[b], labels)), 3)
            for i, a in enumerate(keys) for b in keys[i + 1:]}
        print("variant between seeds", variant["spearman_between_seeds"], flush=True)
        out["more_iterations"] = variant
    out["seconds"] = round(time.time() - t0, 1)
    atomic_write_json(args.json, out)


if __name__ == "__main__":
    main()
