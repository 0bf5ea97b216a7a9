"""Issue 16 CPU measurements: bf16/fp16 vs fp32 agreement, and guidance memory vs micro-batch.

1. Agreement: tiny random SD-layout (DDIM, CFG 4, entropy guidance) and DiT (DDPM, learned σ,
   CFG 4 on 3 channels, entropy + MGD³ mode guidance) sampled in fp32, bf16 and fp16 from the
   same seeds; max and mean |Δ| of the decoded images in [-1, 1] against fp32.
2. Memory: one entropy-guidance gradient (through UNet, VAE decoder and classifier) of a shard
   of 32 at micro-batch 1…32: bytes autograd holds for backward (SavedTensorMeter, exact) and the
   peak RSS of a fresh subprocess doing only that (ru_maxrss, includes ~0.5 GB of imports).

    python benchmarks/precision_memory.py            # ~3 min on a loaded 2-core box
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VAE = dict(in_channels=3, out_channels=3, block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
           up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8, sample_size=32)
SD = {"kind": "sd", "unet": dict(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                                 block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), norm_num_groups=8,
                                 cross_attention_dim=32, attention_head_dim=4),
      "vae": VAE, "scheduler": {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}}
DIT = {"kind": "dit", "transformer": dict(num_attention_heads=4, attention_head_dim=16, in_channels=4, out_channels=8,
                                          num_layers=4, sample_size=16, patch_size=2, num_embeds_ada_norm=10,
                                          norm_num_groups=8),
       "vae": VAE}


def make(kind: str, dtype: str = "fp32", checkpointing: bool = False):
    from practicum.diffusion import load_denoiser
    from practicum.diffusion.precision import prepare_denoiser

    torch.manual_seed(0)
    extra = {}
    if kind == "sd":
        g = torch.Generator().manual_seed(1)
        extra = {"prompt_embeds": torch.randn(10, 8, 32, generator=g), "null_embeds": torch.randn(1, 8, 32, generator=g)}
    return prepare_denoiser(load_denoiser(SD if kind == "sd" else DIT, **extra), dtype=dtype,
                            gradient_checkpointing=checkpointing)


def classifier(shape):
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(shape[0], 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(256, 10))


def agreement(seeds=(0, 1, 2)) -> list[dict]:
    from practicum.diffusion import EntropyGuidance, ModeGuidance, sample

    rows = []
    for kind, scheduler in (("sd", "ddim"), ("dit", "ddpm")):
        outs = {}
        for dtype in ("fp32", "bf16", "fp16"):
            den = make(kind, dtype)
            clf = classifier(den.image_shape)
            images = []
            for seed in seeds:
                terms = [EntropyGuidance(clf, 0.05, every=2)]
                if kind == "dit":
                    terms.append(ModeGuidance(torch.randn(4, *den.sample_shape,
                                                          generator=torch.Generator().manual_seed(seed)), 0.1, t_stop=5))
                out = sample(den, [0, 1, 2, 3], steps=10, cfg_scale=4.0, seed=seed, guidance=terms,
                             scheduler=scheduler, max_retries=5)
                images.append(out.images)
            outs[dtype] = torch.cat(images)
        for dtype in ("bf16", "fp16"):
            diff = (outs[dtype] - outs["fp32"]).abs()
            rows.append({"model": kind, "dtype": dtype, "images": len(diff), "max_abs": float(diff.max()),
                         "mean_abs": float(diff.mean())})
    return rows


def _state(den, shard: int):
    from practicum.diffusion.guidance import StepState

    x = torch.randn(shard, *den.sample_shape, generator=torch.Generator().manual_seed(0))
    cond = den.cond_for_labels([i % 10 for i in range(shard)])
    return StepState(denoiser=den, index=0, num_steps=10, t=500, alpha_bar=0.5, alpha_bar_prev=0.6,
                     sigma=torch.zeros(shard, 1, 1, 1), x_t=x, eps=torch.zeros_like(x), x0=x, cond=cond,
                     labels=torch.zeros(shard, dtype=torch.long), rows=torch.arange(shard), scheduler="ddim")


def one_gradient(shard: int, micro: int, checkpointing: bool) -> dict:
    """Run in a fresh process: one guidance gradient; report saved bytes and peak RSS growth."""
    from practicum.diffusion import EntropyGuidance
    from practicum.diffusion.precision import SavedTensorMeter

    den = make("sd", "fp32", checkpointing)
    term = EntropyGuidance(classifier(den.image_shape), 0.1, micro_batch=micro)
    state = _state(den, 2)
    term.gradient(state)  # warm-up: allocator and lazy init before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    state = _state(den, shard)
    meter = SavedTensorMeter()
    with meter.track():
        term.gradient(state)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"shard": shard, "micro_batch": micro, "checkpointing": checkpointing,
            "saved_mib": meter.peak / 2**20, "peak_rss_mib": after / 1024, "rss_growth_mib": (after - before) / 1024}


def memory() -> list[dict]:
    rows = []
    for micro, ckpt in [(1, False), (2, False), (4, False), (8, False), (16, False), (32, False), (4, True)]:
        code = (f"import sys,json,torch; torch.set_num_threads(1); sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); "
                f"import precision_memory as p; print(json.dumps(p.one_gradient(32, {micro}, {ckpt})))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    torch.set_num_threads(1)
    result = {"agreement": agreement(), "memory": memory()}
    print(f"{'model':6s} {'dtype':5s} {'max|Δ|':>8s} {'mean|Δ|':>8s}")
    for r in result["agreement"]:
        print(f"{r['model']:6s} {r['dtype']:5s} {r['max_abs']:8.4f} {r['mean_abs']:8.5f}")
    print(f"{'shard':>5s} {'micro':>5s} {'ckpt':>5s} {'saved MiB':>10s} {'RSS growth MiB':>15s}")
    for r in result["memory"]:
        print(f"{r['shard']:5d} {r['micro_batch']:5d} {str(r['checkpointing']):>5s} {r['saved_mib']:10.1f} "
              f"{r['rss_growth_mib']:15.1f}")
    out = ROOT / "benchmarks" / "results" / "precision_memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
