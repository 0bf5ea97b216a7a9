"""Paper-scale GPU check (issue 16): SD-1.5- and DiT-XL/2-shaped generators and a ResNet-50
learner, with random weights (speed and memory do not depend on the weights).

Measures, in bf16 by default, on one GPU:
- SD-1.5 at 512² (64² latents, 50 DDIM steps, CFG 4): seconds per image unguided and
  entropy-guided (a ResNet-50 guide at 224², every 5th step, DP's defaults), peak GPU memory;
- DiT-XL/2 at 256² (32² latents, 50 DDPM steps, CFG 4 on 3 channels): unguided, MGD³
  mode-guided (λ = 0.1, t_stop = 25) and entropy-guided;
- the largest guidance micro-batch that fits (one SD guidance gradient per size, doubling
  until out of memory or `--max-micro-batch`), with its peak memory;
- learner throughput: ResNet-50 (and ViT-B/16) training images/s at 224² with device-side
  augmentation and AMP.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check.json      # ~5 min on one H200
    python benchmarks/gpu_check.py --tiny --device cpu                            # seconds, any CPU

`--tiny` shrinks every network and size so the whole script runs on a CPU (tests/test_gpu_check.py);
its numbers mean nothing. The script stops starting new stages after `--budget-seconds`
(default 420 s, leaving margin inside 8 minutes) and records what it skipped.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Published configs (diffusers layout) of runwayml/stable-diffusion-v1-5 and facebook/DiT-XL-2-256.
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280),
                 down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                   "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                 cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32)
SD_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
              layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=512, scaling_factor=0.18215)
SD15_SCHEDULER = dict(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                      steps_offset=1, set_alpha_to_one=False, clip_sample=False)
DIT_XL2 = dict(num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
               sample_size=32, patch_size=2, num_embeds_ada_norm=1000, norm_type="ada_norm_zero")
DIT_SCHEDULER = dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0001, beta_end=0.02)
PROMPT_TOKENS, PROMPT_DIM = 77, 768

TINY_VAE = dict(SD_VAE, block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2,
                up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, norm_num_groups=4, sample_size=8)
TINY_SD_UNET = dict(SD15_UNET, sample_size=4, layers_per_block=1, block_out_channels=(8, 16),
                    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=8, attention_head_dim=2,
                    norm_num_groups=4)
TINY_DIT = dict(DIT_XL2, num_attention_heads=2, attention_head_dim=8, num_layers=2, sample_size=4,
                num_embeds_ada_norm=10, norm_num_groups=4)


def sizes(tiny: bool) -> dict[str, Any]:
    if tiny:
        return {"sd_unet": TINY_SD_UNET, "vae": TINY_VAE, "dit": TINY_DIT, "prompt": (5, 8), "steps": 4,
                "batch": 2, "guide_size": 16, "guide_width": 4, "learner_size": 32, "learner_batch": 4,
                "learner_steps": 2, "learner_load": 40, "max_micro_batch": 4, "classes": 10}
    return {"sd_unet": SD15_UNET, "vae": SD_VAE, "dit": DIT_XL2, "prompt": (PROMPT_TOKENS, PROMPT_DIM), "steps": 50,
            "batch": 8, "guide_size": 224, "guide_width": None, "learner_size": 224, "learner_batch": 256,
            "learner_steps": 30, "learner_load": 256, "max_micro_batch": 64, "classes": 1000}


def build_sd(s: dict, device: torch.device, dtype: str, **memory):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from practicum.diffusion.denoisers import StableDiffusionDenoiser
    from practicum.diffusion.precision import prepare_denoiser

    torch.manual_seed(0)
    with torch.device(device):  # build in place: an 860M-parameter UNet is slow to initialise on a CPU
        unet, vae = UNet2DConditionModel(**s["sd_unet"]), AutoencoderKL(**s["vae"])
    tokens, dim = s["prompt"]
    embeds = torch.randn(s["classes"], tokens, dim) * 0.1
    den = StableDiffusionDenoiser(unet, vae, SD15_SCHEDULER, embeds, torch.zeros(1, tokens, dim))
    return prepare_denoiser(den, device=device, dtype=dtype, **memory)


def build_dit(s: dict, device: torch.device, dtype: str, **memory):
    from diffusers import AutoencoderKL, DiTTransformer2DModel

    from practicum.diffusion.denoisers import DiTDenoiser
    from practicum.diffusion.precision import prepare_denoiser

    torch.manual_seed(0)
    with torch.device(device):
        transformer, vae = DiTTransformer2DModel(**s["dit"]), AutoencoderKL(**s["vae"])
    return prepare_denoiser(DiTDenoiser(transformer, vae, DIT_SCHEDULER), device=device, dtype=dtype, **memory)


def build_guide(s: dict, device: torch.device, dtype: str):
    from practicum.learn import build_model

    guide = build_model("resnet50", s["classes"], (3, s["guide_size"], s["guide_size"]), width=s["guide_width"],
                        seed=0)
    from practicum.diffusion.precision import freeze, parse_dtype

    return freeze(guide).to(device, parse_dtype(dtype))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def timed(device: torch.device, fn: Callable[[], Any]) -> tuple[float, Any, float | None]:
    _reset_peak(device)
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out, _peak_gib(device)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def measure_generator(name: str, den, s: dict, device: torch.device, guide, extra_terms=()) -> dict[str, Any]:
    """Seconds per image unguided / entropy-guided (/ mode-guided), peak memory of each."""
    from practicum.diffusion import EntropyGuidance, ModeGuidance, sample
    from practicum.diffusion.builtin import sampling_defaults

    options = sampling_defaults(den)
    options["steps"] = s["steps"]
    labels = torch.arange(s["batch"]) % s["classes"]
    size = (s["guide_size"], s["guide_size"])
    sample(den, labels[:1], **dict(options, steps=2), seed=0)  # warm-up (kernels, allocator)
    rows: dict[str, Any] = {"model": name, "sampling": options, "batch": s["batch"],
                            "image_shape": list(den.image_shape)}
    runs = {"unguided": []}
    runs["entropy"] = [EntropyGuidance(guide, 0.05, every=5, input_size=size, micro_batch=s["batch"])]
    if name == "dit":
        modes = torch.randn(s["batch"], *den.sample_shape, generator=torch.Generator().manual_seed(0))
        runs["mode"] = [ModeGuidance(modes, 0.1, t_stop=s["steps"] // 2)]
    for kind, terms in runs.items():
        seconds, out, peak = timed(device, lambda: sample(den, labels, guidance=terms, seed=1, **options))
        rows[kind] = {"seconds_per_image": seconds / len(labels), "peak_gib": peak, "retries": out.retries,
                      "finite": bool(torch.isfinite(out.images).all())}
    base = rows["unguided"]["seconds_per_image"]
    for kind in runs:
        if kind != "unguided":
            rows[kind]["ratio_to_unguided"] = rows[kind]["seconds_per_image"] / base
    return rows


def largest_micro_batch(den, guide, s: dict, device: torch.device, deadline: float) -> dict[str, Any]:
    """Double the rows of one SD guidance gradient until out of memory (or the cap)."""
    from practicum.diffusion import EntropyGuidance
    from practicum.diffusion.guidance import StepState

    size = (s["guide_size"], s["guide_size"])
    tried = []
    m, best = 1, None
    while m <= s["max_micro_batch"] and time.perf_counter() < deadline:
        x = torch.randn(m, *den.sample_shape, device=device)
        cond = den.cond_for_labels(torch.arange(m) % s["classes"])
        state = StepState(denoiser=den, index=0, num_steps=50, t=500, alpha_bar=0.3, alpha_bar_prev=0.32,
                          sigma=torch.zeros(m, 1, 1, 1, device=device), x_t=x, eps=torch.zeros_like(x), x0=x,
                          cond=cond, labels=torch.zeros(m, dtype=torch.long), rows=torch.arange(m), scheduler="ddim")
        term = EntropyGuidance(guide, 0.05, input_size=size, micro_batch=m)
        try:
            seconds, _, peak = timed(device, lambda: term.gradient(state))
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            if not _is_oom(exc):
                raise
            tried.append({"micro_batch": m, "oom": True})
            break
        finally:
            del state, x
            if device.type == "cuda":
                torch.cuda.empty_cache()
        tried.append({"micro_batch": m, "seconds": seconds, "peak_gib": peak})
        best = m
        m *= 2
    return {"largest_fitting": best, "capped": best == s["max_micro_batch"], "tried": tried}


def measure_learners(s: dict, device: torch.device, dtype: str) -> dict[str, Any]:
    """Training images/s of ResNet-50 and ViT-B/16 with device augmentation and AMP."""
    from practicum.learn import build_model
    from practicum.learn.streaming import DeviceAugment, normalization_for, train_stream

    out = {}
    n = s["learner_batch"] * 4
    data = torch.randint(0, 256, (n, 3, s["learner_load"], s["learner_load"]), dtype=torch.uint8)
    labels = torch.arange(n) % s["classes"]
    loader = [(data[i:i + s["learner_batch"]].to(device), labels[i:i + s["learner_batch"]])
              for i in range(0, n, s["learner_batch"])]  # already on the device: the model's own speed
    for arch in ("resnet50", "vit_b16"):
        width = s["guide_width"] if arch == "resnet50" else (64 if s["guide_width"] else None)
        model = build_model(arch, s["classes"], (3, s["learner_size"], s["learner_size"]), width=width, seed=0)
        aug = DeviceAugment(s["learner_size"], normalization=normalization_for(arch))
        common = dict(num_classes=s["classes"], augment=aug, amp_dtype=None if dtype == "fp32" else dtype,
                      device=device, mixup_alpha=0.5, cutmix_alpha=1.0, channels_last=arch == "resnet50")
        train_stream(model, loader, steps=2, **common)  # warm-up
        _reset_peak(device)
        stats = train_stream(model, loader, steps=s["learner_steps"], **common)
        out[arch] = {"images_per_second": stats["images_per_second"], "batch": s["learner_batch"],
                     "image_size": s["learner_size"], "peak_gib": _peak_gib(device)}
        del model
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from practicum.diffusion.precision import resolve_device

    started = time.perf_counter()
    deadline = started + args.budget_seconds
    device = resolve_device(args.device)
    s = sizes(args.tiny)
    if args.steps:
        s["steps"] = args.steps
    if args.batch:
        s["batch"] = args.batch
    if args.max_micro_batch:
        s["max_micro_batch"] = args.max_micro_batch
    result: dict[str, Any] = {
        "tiny": args.tiny, "dtype": args.dtype, "device": str(device), "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "skipped": [], "stages_seconds": {}}
    guide = build_guide(s, device, args.dtype)
    memory = dict(gradient_checkpointing=args.gradient_checkpointing, vae_slicing=args.vae_slicing)

    def stage(name: str, fn: Callable[[], Any]) -> None:
        if time.perf_counter() > deadline:
            result["skipped"].append(name)
            return
        t0 = time.perf_counter()
        try:
            result[name] = fn()
        except Exception as exc:  # record and go on: one failing stage must not lose the others
            result[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
        result["stages_seconds"][name] = time.perf_counter() - t0
        print(f"[{time.perf_counter() - started:6.1f}s] {name}: done", flush=True)

    sd_holder: dict[str, Any] = {}

    def sd_stage():
        sd_holder["den"] = build_sd(s, device, args.dtype, **memory)
        return measure_generator("sd15", sd_holder["den"], s, device, guide)

    stage("sd15", sd_stage)
    if "den" in sd_holder:
        stage("micro_batch", lambda: largest_micro_batch(sd_holder["den"], guide, s, device, deadline))
        del sd_holder["den"]
        if device.type == "cuda":
            torch.cuda.empty_cache()
    stage("dit_xl2", lambda: measure_generator("dit", build_dit(s, device, args.dtype, **memory), s, device, guide))
    if device.type == "cuda":
        torch.cuda.empty_cache()
    stage("learners", lambda: measure_learners(s, device, args.dtype))
    result["total_seconds"] = time.perf_counter() - started
    return result


def print_table(result: dict[str, Any]) -> None:
    print(f"device {result['device']} ({result['gpu']}), dtype {result['dtype']}, tiny={result['tiny']}")
    for key in ("sd15", "dit_xl2"):
        row = result.get(key)
        if not isinstance(row, dict) or "error" in row:
            print(f"{key:8s} {row}")
            continue
        for kind in ("unguided", "entropy", "mode"):
            if kind in row:
                r = row[kind]
                ratio = f"  ×{r['ratio_to_unguided']:.2f}" if "ratio_to_unguided" in r else ""
                peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.1f} GiB"
                print(f"{key:8s} {kind:9s} {r['seconds_per_image']:.3f} s/image  peak {peak}{ratio}")
    mb = result.get("micro_batch")
    if isinstance(mb, dict) and "largest_fitting" in mb:
        print(f"largest guidance micro-batch that fits: {mb['largest_fitting']} (capped: {mb['capped']})")
    for arch, r in (result.get("learners") or {}).items():
        if isinstance(r, dict) and "images_per_second" in r:
            print(f"learner {arch}: {r['images_per_second']:.0f} images/s (batch {r['batch']}, {r['image_size']}²)")
    if result["skipped"]:
        print(f"skipped (time budget): {', '.join(result['skipped'])}")
    print(f"total {result['total_seconds']:.0f} s")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny networks and sizes (CPU smoke run)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="bf16", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default 50; tiny 4)")
    parser.add_argument("--batch", type=int, default=None, help="images per timed generation (default 8)")
    parser.add_argument("--max-micro-batch", type=int, default=None)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--vae-slicing", action="store_true")
    parser.add_argument("--budget-seconds", type=float, default=420.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_check.json")
    args = parser.parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str))
    tmp.replace(args.out)
    print_table(result)
    return result


if __name__ == "__main__":
    main()
