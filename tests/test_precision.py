"""Issue 16: bf16/fp16 generators on tiny SD-layout and DiT models, frozen generators, guidance
micro-batches and their memory, through the sampler, the DP generator and MGD³ mode guidance."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from practicum.diffusion import Denoiser, EntropyGuidance, ModeGuidance, load_denoiser, sample
from practicum.diffusion.precision import SavedTensorMeter, ToDtype, parse_dtype, prepare_denoiser
from practicum.errors import ConfigError

VAE = dict(in_channels=3, out_channels=3, block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2,
           up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4, sample_size=8)
SD = {"kind": "sd", "unet": dict(sample_size=4, in_channels=4, out_channels=4, layers_per_block=1,
                                 block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), norm_num_groups=4,
                                 cross_attention_dim=8, attention_head_dim=2),
      "vae": VAE, "scheduler": {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}}
DIT = {"kind": "dit", "transformer": dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                          num_layers=2, sample_size=4, patch_size=2, num_embeds_ada_norm=3,
                                          norm_num_groups=4),
       "vae": VAE}
LABELS = [0, 1, 2, 0]

# bf16 keeps 8 bits of mantissa (~3 significant digits): over 6 steps of a random tiny model the
# decoded images of a bf16 run stay within these bounds of the fp32 run (measured max ≈ 0.03).
BF16_MAX_ABS = 0.1
BF16_MEAN_ABS = 0.02


def make(kind: str, dtype: str = "fp32", **options) -> Denoiser:
    torch.manual_seed(0)
    extra = {}
    if kind == "sd":
        g = torch.Generator().manual_seed(1)
        extra = {"prompt_embeds": torch.randn(3, 5, 8, generator=g), "null_embeds": torch.randn(1, 5, 8, generator=g)}
    return prepare_denoiser(load_denoiser(SD if kind == "sd" else DIT, **extra), dtype=dtype, **options)


def classifier(image_shape, seed=1) -> nn.Module:
    torch.manual_seed(seed)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(image_shape), 3))
    with torch.no_grad():
        clf[1].weight.mul_(3.0)
    return clf


def test_parse_dtype_names_and_errors():
    assert parse_dtype("bf16") is torch.bfloat16 and parse_dtype("float16") is torch.float16
    assert parse_dtype(None) is torch.float32
    with pytest.raises(ConfigError, match="unknown dtype"):
        parse_dtype("int8")


@pytest.mark.parametrize("kind", ["sd", "dit"])
def test_schedule_stays_fp32_and_generator_is_frozen(kind):
    den = make(kind, "bf16")
    # before issue 16 the table was a buffer: .to(bf16) rounded the first ᾱ to 1.0 (ZeroDivisionError)
    assert den.alphas_cumprod.dtype == torch.float64 and float(den.alphas_cumprod[0]) < 1.0
    den.to(torch.float16)
    assert den.alphas_cumprod.dtype == torch.float64
    den.to(torch.bfloat16)
    assert den.dtype == torch.bfloat16
    assert not any(p.requires_grad for p in den.parameters())
    clf = classifier(den.image_shape)
    out = sample(den, LABELS, steps=4, cfg_scale=2.0, seed=0, guidance=[EntropyGuidance(clf, 0.1, every=1)])
    assert out.images.dtype == torch.float32 and torch.isfinite(out.images).all()
    assert all(p.grad is None for p in den.parameters())  # guidance gradients went to x_t only
    assert all(p.grad is None for p in clf.parameters()) and all(p.requires_grad for p in clf.parameters())


@pytest.mark.parametrize("kind,scheduler", [("sd", "ddim"), ("dit", "ddpm")])
def test_bf16_guided_generation_matches_fp32(kind, scheduler):
    results = {}
    for dtype in ("fp32", "bf16"):
        den = make(kind, dtype)
        clf = classifier(den.image_shape)
        terms = [EntropyGuidance(clf, 0.05, every=2)]
        if kind == "dit":
            terms.append(ModeGuidance(torch.randn(len(LABELS), *den.sample_shape,
                                                  generator=torch.Generator().manual_seed(5)), 0.1, t_stop=2))
        results[dtype] = sample(den, LABELS, steps=6, cfg_scale=3.0, seed=0, guidance=terms, scheduler=scheduler)
    a, b = results["fp32"], results["bf16"]
    diff = (a.images - b.images).abs()
    assert diff.max() < BF16_MAX_ABS and diff.mean() < BF16_MEAN_ABS, (float(diff.max()), float(diff.mean()))
    assert a.guided_steps == b.guided_steps
    # the guidance did something in bf16 too: the result differs from the unguided bf16 run
    plain = sample(make(kind, "bf16"), LABELS, steps=6, cfg_scale=3.0, seed=0, scheduler=scheduler)
    assert (plain.images - b.images).abs().max() > 10 * diff.mean()


def test_bf16_learner_gets_an_explicit_cast():
    den = make("sd", "fp32")
    clf = classifier(den.image_shape).to(torch.bfloat16)  # a bf16 learner with an fp32 generator
    out = sample(den, LABELS[:2], steps=3, seed=0, guidance=[EntropyGuidance(clf, 0.1, every=1)])
    assert torch.isfinite(out.images).all() and out.stats["entropy"].dtype == torch.float32
    wrapped = ToDtype(clf)
    assert wrapped(torch.zeros(1, *den.image_shape, dtype=torch.float64)).dtype == torch.float32


def test_guidance_micro_batch_gives_the_same_gradient():
    den = make("sd", "fp32")
    clf = classifier(den.image_shape)
    outs = [sample(den, LABELS * 2, steps=3, seed=0, guidance=[EntropyGuidance(clf, 0.1, every=1, micro_batch=m)])
            for m in (None, 3, 1)]
    for other in outs[1:]:
        torch.testing.assert_close(other.images, outs[0].images, atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="micro_batch"):
        EntropyGuidance(clf, 0.1, micro_batch=0)


def _guidance_peak(den, shard: int, micro: int | None, checkpointing: bool = False) -> int:
    from practicum.diffusion.guidance import StepState

    prepare_denoiser(den, gradient_checkpointing=checkpointing)
    clf = classifier(den.image_shape)
    x = torch.randn(shard, *den.sample_shape, generator=torch.Generator().manual_seed(0))
    cond = den.cond_for_labels([i % 3 for i in range(shard)])
    state = StepState(denoiser=den, index=0, num_steps=10, t=500, alpha_bar=0.5, alpha_bar_prev=0.6,
                      sigma=torch.zeros(shard, 1, 1, 1), x_t=x, eps=torch.zeros_like(x), x0=x, cond=cond,
                      labels=torch.zeros(shard, dtype=torch.long), rows=torch.arange(shard), scheduler="ddim")
    meter = SavedTensorMeter()
    with meter.track():
        EntropyGuidance(clf, 0.1, micro_batch=micro).gradient(state)
    return meter.peak


def test_guidance_memory_follows_the_micro_batch_not_the_shard():
    den = make("sd", "fp32")
    small_shard = _guidance_peak(den, 8, 2)
    big_shard = _guidance_peak(den, 32, 2)
    whole = _guidance_peak(den, 32, None)
    # the activations saved for backward scale with the rows in one pass: 32 rows at once hold
    # far more than 2 at a time, and the shard size barely matters at a fixed micro-batch
    assert whole > 4 * big_shard
    assert big_shard < 1.2 * small_shard
    assert _guidance_peak(den, 32, 2, checkpointing=True) < big_shard  # checkpointing saves less


def test_fp16_overflow_is_redrawn_by_the_retry_logic():
    class Overflowing(Denoiser):
        """ε ≈ x_t, computed as x·s − x·s + x with s = 6e4: in fp16 (max 65504) x·s overflows to inf
        wherever |x| > 1.09, and inf − inf is NaN — the kind of sample the redraw logic catches."""

        def __init__(self):
            super().__init__({"num_train_timesteps": 1000})
            self.scale = nn.Parameter(torch.tensor(6e4))
            self.sample_shape = self.image_shape = (1, 1, 1)
            self.supports_cfg = False

        def _model_output(self, x_t, t, cond):
            return x_t * self.scale - x_t * self.scale + x_t

    den = prepare_denoiser(Overflowing(), dtype="fp16")
    out = sample(den, [0] * 16, steps=2, seed=0, max_retries=20, clip_sample=False)
    assert out.retries > 0 and torch.isfinite(out.images).all()


def test_dp_generator_request_in_bf16():
    from practicum.learn import build_model
    from practicum.practice.generators import DiffusionGenerator, Request

    den = make("sd", "fp32")
    gen = DiffusionGenerator(den, sampling={"steps": 4}, guidance={"every": 1, "micro_batch": 2},
                             shard_size=4, image_shape=(3, 6, 6), dtype="bf16")
    assert den.dtype == torch.bfloat16 and gen.sampling["cfg_scale"] == 4.0  # SD's default CFG, not 1.0
    learner = build_model("cnn", 3, (3, 6, 6), 4, seed=0).eval()  # an fp32 learner on 6x6 images
    out = gen(Request(torch.tensor([0, 1, 2, 0, 1]), omega=0.1, guide=learner, seed=3))
    assert out.images.shape == (5, 3, 6, 6) and out.images.dtype == torch.float32
    assert torch.isfinite(out.images).all() and out.retries == 0


def test_mgd3_shard_in_bf16_with_a_class_map():
    import numpy as np

    from practicum.diffusion.service import sample_shard
    from practicum.distill.methods import class_job

    den = make("dit", "bf16")
    modes = torch.randn(2, *den.sample_shape, generator=torch.Generator().manual_seed(2)).numpy()
    sampling = {"steps": 6, "scheduler": "ddpm", "cfg_scale": 4.0, "timestep_spacing": "linspace"}

    def job(model_label):  # data class 0, mapped to this model class
        return class_job("mgd3", model_label, 1, modes, ipc=2, lam=0.1, t_stop=2, form="auto", sampling=sampling)

    out = sample_shard(den, job(2))
    assert out["labels"].tolist() == [2, 2] and out["guided_steps"]["mode"] == 3
    assert np.isfinite(out["images"].numpy()).all()
    fp32 = sample_shard(make("dit", "fp32"), job(2))
    assert (out["images"] - fp32["images"]).abs().max() < BF16_MAX_ABS
    other = sample_shard(make("dit", "fp32"), job(1))
    assert (other["images"] - fp32["images"]).abs().max() > 1e-3  # the mapped class is what conditions


def test_fp16_guidance_gradient_is_loss_scaled(monkeypatch):
    """Without loss scaling, entropy gradients through an fp16 network underflow and the guided
    sample drifts away from the fp32 one (measured: mean |Δ| 0.026 vs 0.0008 with scaling)."""
    from practicum.diffusion import guidance

    den32, den16 = make("sd", "fp32"), make("sd", "fp16")

    def run(den):
        clf = classifier(den.image_shape)
        with torch.no_grad():
            clf[1].weight.mul_(1e-3)  # a near-uniform learner: entropy gradients of ~1e-7 per latent
        return sample(den, LABELS, steps=6, cfg_scale=3.0, seed=0, guidance=[EntropyGuidance(clf, 0.05, every=1)])

    ref = run(den32)
    scaled = (run(den16).images - ref.images).abs().mean()
    monkeypatch.setattr(guidance, "FP16_GRAD_SCALE", 1.0)
    unscaled = (run(den16).images - ref.images).abs().mean()
    assert scaled < BF16_MEAN_ABS and scaled < unscaled


def test_guidance_freezes_an_unprepared_generator_for_the_pass():
    den = load_denoiser(SD, prompt_embeds=torch.randn(3, 5, 8), null_embeds=torch.randn(1, 5, 8))
    assert all(p.requires_grad for p in den.parameters())  # a user's model, not prepared
    clf = classifier(den.image_shape)
    out = sample(den, LABELS[:2], steps=2, seed=0, guidance=[EntropyGuidance(clf, 0.1, every=1)])
    assert torch.isfinite(out.images).all()
    assert all(p.grad is None for p in den.parameters())
    assert all(p.requires_grad for p in den.parameters())  # restored afterwards
