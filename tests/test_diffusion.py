"""The guided loop on tiny random models: adapters, guidance sign and effect, determinism, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from practicum.diffusion import (
    ClassGuidance,
    Correction,
    Denoiser,
    EntropyGuidance,
    GuidanceTerm,
    ModeGuidance,
    load_denoiser,
    sample,
)
from practicum.diffusion.guidance import entropy_from_logits
from practicum.diffusion.sampler import _Loop, make_schedule
from practicum.errors import ConfigError, ModelError

VAE = dict(in_channels=3, out_channels=3, block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2,
           up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4, sample_size=8)
CONFIGS = {
    "unet": {"kind": "unet", "unet": dict(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                                          block_out_channels=(8, 16), down_block_types=("DownBlock2D",) * 2,
                                          up_block_types=("UpBlock2D",) * 2, norm_num_groups=4, num_class_embeds=4)},
    "sd": {"kind": "sd", "unet": dict(sample_size=4, in_channels=4, out_channels=4, layers_per_block=1,
                                      block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                      up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), norm_num_groups=4,
                                      cross_attention_dim=8, attention_head_dim=2),
           "vae": VAE},
    "dit": {"kind": "dit", "transformer": dict(num_attention_heads=2, attention_head_dim=8, in_channels=4,
                                               out_channels=8, num_layers=2, sample_size=4, patch_size=2,
                                               num_embeds_ada_norm=3, norm_num_groups=4),
            "vae": VAE},
}


class GaussianDenoiser(Denoiser):
    """The exact ε for data ~ N(mu, s²I): a smooth, trained-like denoiser with no weights."""

    def __init__(self, mu: torch.Tensor, s: float = 0.5):
        super().__init__({"num_train_timesteps": 1000})
        self.mu, self.s = mu, s
        self.sample_shape = self.image_shape = tuple(mu.shape)
        self.num_classes = 3
        self.supports_cfg = False

    def _model_output(self, x_t, t, cond):
        ab = self.alphas_cumprod[t].float().view(-1, 1, 1, 1)
        x0 = self.mu + ab.sqrt() * self.s ** 2 / (ab * self.s ** 2 + 1 - ab) * (x_t - ab.sqrt() * self.mu)
        return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()


def make_denoiser(kind: str):
    torch.manual_seed(0)
    options = {}
    if kind == "sd":
        options = {"prompt_embeds": torch.randn(3, 5, 8), "null_embeds": torch.randn(1, 5, 8)}
    return load_denoiser(CONFIGS[kind], **options).eval()


@pytest.fixture(scope="module")
def denoisers():
    return {kind: make_denoiser(kind) for kind in CONFIGS}


def make_classifier(image_shape, classes=3, scale=3.0, seed=1):
    torch.manual_seed(seed)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(image_shape), classes))
    with torch.no_grad():
        clf[1].weight.mul_(scale)
    return clf


LABELS = [0, 1, 2, 0]


@pytest.mark.parametrize("kind", ["unet", "sd", "dit"])
@pytest.mark.parametrize("scheduler", ["ddim", "ddpm"])
def test_every_adapter_runs_every_term(denoisers, kind, scheduler):
    den = denoisers[kind]
    clf = make_classifier(den.image_shape)
    modes = torch.randn(len(LABELS), *den.sample_shape)
    terms = [EntropyGuidance(clf, 0.05, every=2, min_alpha_bar=0),
             EntropyGuidance(clf, 0.5, every=3, form="score", through="learner", min_alpha_bar=0),
             ModeGuidance(modes, 0.1, t_stop=3), ClassGuidance(clf, torch.tensor(LABELS), scale=0.5)]
    out = sample(den, LABELS, steps=6, cfg_scale=2.0, guidance=terms, seed=0, scheduler=scheduler)
    assert out.images.shape == (4, *den.image_shape)
    assert out.latents.shape == (4, *den.sample_shape)
    assert torch.isfinite(out.images).all() and out.images.abs().max() <= 1
    assert out.retries == 0
    assert out.stats["entropy"].shape == (4,) and out.stats["mode_distance"].shape == (4,)
    # entropy terms at i = 0, 2, 4 and 0, 3; the mode term while the respaced index 5..0 is > 3
    assert out.guided_steps == {"entropy": 3 + 2, "mode": 2, "class": 6}  # counts add up per name
    assert out.settings["cfg_lambda"] == pytest.approx(1.0)


def test_latent_models_encode_to_sample_space(denoisers):
    for kind in ("sd", "dit"):
        den = denoisers[kind]
        z = den.encode(torch.zeros(2, *den.image_shape))
        assert z.shape == (2, *den.sample_shape)
    assert denoisers["dit"].learned_variance and denoisers["dit"].cfg_channels == 3


def _mean_entropy(den, clf, omega, form, steps=8, n=8):
    labels = [i % 3 for i in range(n)]
    term = EntropyGuidance(clf, omega, every=1, form=form, min_alpha_bar=0)
    out = sample(den, labels, steps=steps, cfg_scale=1.0, guidance=[term], seed=3, clip_sample=False)
    with torch.no_grad():
        return float(entropy_from_logits(clf(out.images)).mean())


@pytest.mark.parametrize("form,omega", [("latent", 0.05), ("score", 3.0)])
def test_entropy_guidance_sign(denoisers, form, omega):
    den = denoisers["unet"]
    clf = make_classifier(den.image_shape)
    low, zero, high = (_mean_entropy(den, clf, w, form) for w in (-omega, 0.0, omega))
    assert low < zero < high


def test_one_guided_step_raises_entropy_of_x0(denoisers):
    # spec pitfall 1: one step with ω > 0 raises the learner's entropy of x̂0 versus ω = 0, same noise
    den = denoisers["unet"]
    clf = make_classifier(den.image_shape)
    seen = {}

    class Probe(GuidanceTerm):
        name = "probe"

        def __init__(self, key):
            self.key = key

        def active(self, state):
            return state.index == 1

        def correction(self, state):
            seen[self.key] = float(entropy_from_logits(clf(state.x0.clamp(-1, 1))).mean().detach())
            return Correction()

    for key, omega in (("plain", 0.0), ("guided", 0.1)):
        sample(den, LABELS, steps=4, guidance=[EntropyGuidance(clf, omega, every=4, min_alpha_bar=0), Probe(key)], seed=5,
               clip_sample=False)
    assert seen["guided"] > seen["plain"]


def test_omega_zero_is_the_unguided_sampler_bit_for_bit(denoisers):
    den = denoisers["sd"]
    clf = make_classifier(den.image_shape)
    plain = sample(den, LABELS, steps=5, cfg_scale=3.0, seed=11, scheduler="ddpm")
    zero = sample(den, LABELS, steps=5, cfg_scale=3.0, seed=11, scheduler="ddpm",
                  guidance=[EntropyGuidance(clf, 0.0, every=1), ModeGuidance(torch.zeros(4, *den.sample_shape), 0.0)])
    assert torch.equal(plain.latents, zero.latents) and torch.equal(plain.images, zero.images)


def test_same_seed_same_bytes_and_other_seed_differs(denoisers):
    den = denoisers["dit"]
    clf = make_classifier(den.image_shape)
    runs = [sample(den, LABELS, steps=4, cfg_scale=2.0, eta=0.5, seed=s,
                   guidance=[EntropyGuidance(clf, 0.05, every=2)]) for s in (7, 7, 8)]
    assert torch.equal(runs[0].images, runs[1].images)
    assert not torch.equal(runs[0].images, runs[2].images)


def test_score_form_equals_a_hand_computed_step(denoisers):
    den = denoisers["unet"]
    clf = make_classifier(den.image_shape)
    omega, labels = 2.0, torch.tensor([0, 1])
    out = sample(den, labels, steps=1, guidance=[EntropyGuidance(clf, omega, every=1, form="score", stop=1, min_alpha_bar=0)],
                 seed=4, clip_sample=False)
    # by hand: x_T from the same generator, ε and g = ∇_x Σ H(f(x̂0(x))) through the conditional pass
    x = torch.randn((2, *den.sample_shape), generator=torch.Generator().manual_seed(4))
    _, schedule = make_schedule(den, 1)
    t, ab = schedule.timesteps[0], schedule.alpha_bar[0]
    cond = den.cond_for_labels(labels)
    with torch.no_grad():
        eps = den(x, t, cond)
    z = x.clone().requires_grad_(True)
    x0 = (z - math.sqrt(1 - ab) * den(z, t, cond)) / math.sqrt(ab)
    h = entropy_from_logits(clf(x0.clamp(-1, 1))).sum()
    (g,) = torch.autograd.grad(h, z)
    eps_tilde = eps - omega * math.sqrt(1 - ab) * g
    expected = (x - math.sqrt(1 - ab) * eps_tilde) / math.sqrt(ab)  # ᾱ_prev = 1 after the last step
    assert torch.allclose(out.latents, expected, atol=1e-5)


def first_step_state(den, seed: int, labels=(0, 1)):
    """The sampler's step state at its one step (what a guidance term sees), for checking a term by hand."""
    captured = {}

    class Capture(GuidanceTerm):
        name = "capture"

        def correction(self, state):
            captured["state"] = state
            return Correction()

    sample(den, list(labels), steps=1, guidance=[Capture()], seed=seed)
    return captured["state"]


def test_latent_form_is_the_normalised_nudge(denoisers):
    den = denoisers["unet"]
    clf = make_classifier(den.image_shape)
    term = EntropyGuidance(clf, 0.07, every=1, form="latent", x0_blend=False)
    state = first_step_state(den, seed=2)
    nudge = term.correction(state).x
    g = term.gradient(state)
    for b in range(2):
        expected = 0.07 * state.x_t[b].norm() * g[b] / (g[b].norm() + 1e-8)
        assert torch.allclose(nudge[b], expected, atol=1e-6)


def test_per_sample_gradients_do_not_depend_on_the_batch(denoisers):
    den = denoisers["sd"]
    clf = make_classifier(den.image_shape)
    term = EntropyGuidance(clf, 0.05, every=1)
    grads = {}

    class Capture(GuidanceTerm):
        name = "capture"

        def correction(self, state):
            grads[len(state.labels)] = term.gradient(state)
            return Correction()

    noise = torch.randn(3, *den.sample_shape, generator=torch.Generator().manual_seed(0))
    sample(den, [0, 1, 2], steps=1, guidance=[Capture()], noise=noise)
    sample(den, [0], steps=1, guidance=[Capture()], noise=noise[:1])
    assert torch.allclose(grads[3][:1], grads[1], atol=1e-5)


@pytest.mark.parametrize("scheduler", ["ddim", "ddpm"])
def test_mode_guidance_pulls_toward_the_mode(scheduler):
    den = GaussianDenoiser(torch.zeros(1, 8, 8))
    modes = torch.rand(4, *den.sample_shape) * 1.6 - 0.8
    noise = torch.randn(4, *den.sample_shape, generator=torch.Generator().manual_seed(1))
    distances = []
    for lam in (0.0, 0.03, 0.1, 0.3):
        out = sample(den, LABELS, steps=10, guidance=[ModeGuidance(modes, lam, t_stop=-1)], noise=noise, seed=1,
                     scheduler=scheduler, eta=0.0)
        distances.append(float(out.stats["mode_distance"].mean()))
    assert distances == sorted(distances, reverse=True) and distances[-1] < distances[0]


def test_stop_guidance_window():
    den = make_denoiser("unet")
    steps, t_stop = 10, 4
    active_steps = []

    class Recording(ModeGuidance):
        def correction(self, state):
            active_steps.append(state.step)
            return super().correction(state)

    out = sample(den, [0, 1], steps=steps, seed=0,
                 guidance=[Recording(torch.zeros(2, *den.sample_shape), 0.3, t_stop=t_stop)])
    assert out.guided_steps["mode"] == steps - 1 - t_stop
    assert active_steps == list(range(steps - 1, t_stop, -1))  # the first, noisiest steps only


@pytest.mark.parametrize("form", ["eps", "mean", "prev"])
def test_one_mode_guided_step_reduces_distance_to_the_mode(form):
    # MGD³ pitfall 1 (the Eq. 6 sign): a guided step moves x̂0 toward m
    den = GaussianDenoiser(torch.zeros(1, 8, 8))
    modes = torch.full((2, *den.sample_shape), 0.5)
    noise = torch.randn(2, *den.sample_shape, generator=torch.Generator().manual_seed(2))
    seen = {}

    class Probe(GuidanceTerm):
        name = "probe"

        def __init__(self, key):
            self.key = key

        def active(self, state):
            return state.index == 1

        def correction(self, state):
            seen[self.key] = float((state.x0 - modes).flatten(1).norm(dim=1).mean())
            return Correction()

    for key, lam in (("plain", 0.0), ("guided", 0.1)):
        sample(den, [0, 1], steps=4, noise=noise, guidance=[ModeGuidance(modes, lam, t_stop=2, form=form), Probe(key)],
               clip_sample=False, scheduler="ddpm" if form == "mean" else "ddim")
    assert seen["guided"] < seen["plain"]


def test_learned_range_variance_matches_its_limits(denoisers):
    den = denoisers["dit"]
    kind, schedule = make_schedule(den, 10, "ddpm")
    loop = _Loop(den, kind, schedule, 0.0, 1.0, [], "learned_range", False, torch.Generator())
    like = torch.zeros(1, 4, 4, 4)
    i = 3
    ab, ab_prev = schedule.alpha_bar[i], schedule.alpha_bar_prev[i]
    beta = 1 - ab / ab_prev
    beta_tilde = beta * (1 - ab_prev) / (1 - ab)
    lo = loop._sigma(i, -torch.ones_like(like), like)
    hi = loop._sigma(i, torch.ones_like(like), like)
    assert torch.allclose(lo, torch.full_like(like, math.sqrt(beta_tilde)), rtol=1e-5)
    assert torch.allclose(hi, torch.full_like(like, math.sqrt(beta)), rtol=1e-5)


def test_cfg_mixes_only_the_first_channels_for_dit(denoisers):
    den = denoisers["dit"]
    kind, schedule = make_schedule(den, 4)
    loop = _Loop(den, kind, schedule, 0.0, 4.0, [], "fixed_small", False, torch.Generator())
    x = torch.randn(2, *den.sample_shape)
    cond, null = den.cond_for_labels([0, 1]), den.null_cond(2)
    with torch.no_grad():
        eps, _ = loop._eps(x, 500, cond, null)
        eps_c, eps_u = den(x, 500, cond), den(x, 500, null)
    assert torch.allclose(eps[:, :3], eps_u[:, :3] + 4.0 * (eps_c[:, :3] - eps_u[:, :3]), atol=1e-5)
    assert torch.allclose(eps[:, 3:], eps_c[:, 3:], atol=1e-6)


def test_stateful_schedulers_are_refused(denoisers):
    from diffusers import DPMSolverMultistepScheduler, PNDMScheduler

    den = denoisers["unet"]
    for scheduler in (PNDMScheduler(), DPMSolverMultistepScheduler(), "euler", "pndm"):
        with pytest.raises(ConfigError, match="scheduler|stateful"):
            sample(den, [0], steps=3, scheduler=scheduler)


def test_non_finite_samples_are_redrawn(denoisers):
    den = denoisers["unet"]

    class Poison(GuidanceTerm):
        """Breaks row 0 of the first pass only."""

        name = "poison"
        calls = 0

        def active(self, state):
            return state.index == 0

        def correction(self, state):
            Poison.calls += 1
            x = torch.zeros_like(state.x_t)
            if Poison.calls == 1:
                x[(state.rows == 0).nonzero().flatten()] = float("nan")
            return Correction(x=x)

    out = sample(den, [0, 1, 2], steps=3, guidance=[Poison()], seed=0)
    assert out.retries == 1 and torch.isfinite(out.images).all()
    assert out.stats["attempts"].tolist() == [2, 1, 1]

    class AlwaysNaN(Poison):
        def correction(self, state):
            return Correction(x=torch.full_like(state.x_t, float("nan")))

    with pytest.raises(ModelError, match="non-finite"):
        sample(den, [0], steps=2, guidance=[AlwaysNaN()], max_retries=2)


def test_cfg_needs_a_null_condition():
    torch.manual_seed(0)
    config = {"kind": "unet", "unet": {**CONFIGS["unet"]["unet"], "num_class_embeds": None}}
    den = load_denoiser(config)
    assert den.num_classes is None
    assert sample(den, [0, 0], steps=2).images.shape == (2, 1, 8, 8)
    with pytest.raises(ConfigError, match="null condition"):
        sample(den, [0], steps=2, cfg_scale=2.0)


def test_batch_size_chunks_give_the_same_result_as_explicit_noise(denoisers):
    den = denoisers["unet"]
    noise = torch.randn(4, *den.sample_shape)
    whole = sample(den, LABELS, steps=3, noise=noise)
    chunked = sample(den, LABELS, steps=3, noise=noise, batch_size=3)
    assert torch.allclose(whole.latents, chunked.latents, atol=1e-5)


def test_bad_guidance_settings_are_config_errors(denoisers):
    clf = make_classifier((1, 8, 8))
    with pytest.raises(ConfigError):
        EntropyGuidance(clf, 0.1, form="sideways")
    with pytest.raises(ConfigError):
        EntropyGuidance(clf, 0.1, every=0)
    with pytest.raises(ConfigError):
        sample(denoisers["unet"], [0], steps=0)
    with pytest.raises(ConfigError, match="class ids"):
        sample(denoisers["unet"], [7], steps=2)


def test_classifier_state_is_restored_after_guidance(denoisers):
    den = denoisers["unet"]
    clf = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)).train()
    running = clf[2].running_mean.clone()
    sample(den, [0, 1], steps=2, guidance=[EntropyGuidance(clf, 0.05, every=1)], seed=0)
    assert clf.training and all(p.requires_grad for p in clf.parameters())
    assert torch.equal(clf[2].running_mean, running)  # eval mode: BatchNorm statistics untouched


def test_classifier_input_is_resized(denoisers):
    den = denoisers["sd"]  # decodes to 3x8x8
    clf = make_classifier((3, 4, 4))
    out = sample(den, [0, 1], steps=2, guidance=[EntropyGuidance(clf, 0.05, every=1, input_size=(4, 4))], seed=0)
    assert out.stats["entropy"].shape == (2,)


def test_load_denoiser_from_folders(tmp_path, denoisers):
    with pytest.raises(ModelError, match="does not exist"):
        load_denoiser(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError):
        load_denoiser(empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text("{not json")
    with pytest.raises(ModelError, match="JSON"):
        load_denoiser(broken)
    # a saved DDPM-style pipeline folder: unet/ + scheduler/
    den = denoisers["unet"]
    folder = tmp_path / "ddpm"
    den.unet.save_pretrained(folder / "unet")
    from diffusers import DDPMScheduler

    DDPMScheduler(**{k: v for k, v in den.scheduler_config.items() if not k.startswith("_")}).save_pretrained(
        folder / "scheduler")
    (folder / "model_index.json").write_text('{"_class_name": "DDPMPipeline", "unet": ["diffusers", "UNet2DModel"], '
                                             '"scheduler": ["diffusers", "DDPMScheduler"]}')
    loaded = load_denoiser(folder)
    a = sample(den, [0, 1], steps=3, seed=0)
    b = sample(loaded, [0, 1], steps=3, seed=0)
    assert torch.allclose(a.images, b.images, atol=1e-6)
    # missing weights inside an otherwise valid folder
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelError):
        load_denoiser(folder)


def test_minmax_preprocessing_and_posterior_samples(denoisers):
    from practicum.diffusion import prepare_for_classifier

    x = torch.tensor([[[[-3.0, 0.0], [1.0, 5.0]]]])
    y = prepare_for_classifier(x, None, preprocess="minmax")
    assert torch.allclose(y.flatten(), torch.tensor([-1.0, -0.25, 0.0, 1.0]))
    den = denoisers["sd"]
    images = torch.zeros(2, *den.image_shape)
    a = den.encode(images, posterior="sample", generator=torch.Generator().manual_seed(0))
    b = den.encode(images, posterior="sample", generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.equal(a, den.encode(images))


def test_load_sd_and_dit_folders(tmp_path, denoisers):
    from safetensors.torch import save_file

    sd = denoisers["sd"]
    folder = tmp_path / "sd"
    sd.unet.save_pretrained(folder / "unet")
    sd.vae.save_pretrained(folder / "vae")
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", '
                                             '"UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}')
    with pytest.raises(ModelError, match="class names|transformers"):
        load_denoiser(folder)  # no prompts: neither embeddings nor class names
    save_file({"prompt_embeds": sd.prompt_embeds.contiguous(), "null_embeds": sd.null_embeds.contiguous()},
              str(folder / "prompt_embeds.safetensors"))
    loaded = load_denoiser(folder)
    a = sample(sd, [0, 2], steps=2, cfg_scale=2.0, seed=0)
    b = sample(loaded, [0, 2], steps=2, cfg_scale=2.0, seed=0)
    assert torch.allclose(a.images, b.images, atol=1e-5)

    dit = denoisers["dit"]
    folder = tmp_path / "dit"
    dit.transformer.save_pretrained(folder / "transformer")
    dit.vae.save_pretrained(folder / "vae")
    (folder / "model_index.json").write_text('{"_class_name": "DiTPipeline", "transformer": ["diffusers", '
                                             '"DiTTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}')
    loaded = load_denoiser(folder, class_names=["a", "b", "c"])
    assert loaded.learned_variance and loaded.class_names == ("a", "b", "c")
    a = sample(dit, [1], steps=2, cfg_scale=4.0, seed=0, scheduler="ddpm")
    b = sample(loaded, [1], steps=2, cfg_scale=4.0, seed=0, scheduler="ddpm")
    assert torch.allclose(a.images, b.images, atol=1e-5)


# ---------------------------------------------------------------- the guided window (DP schedule)

class _StepLog(GuidanceTerm):
    """Records, per loop step, whether the entropy term under test was active."""

    name = "log"

    def __init__(self, term):
        self.term, self.active_at, self.alpha_bar = term, [], []

    def correction(self, state):
        self.alpha_bar.append(state.alpha_bar)
        if self.term.active(state):
            self.active_at.append(state.index)
        return Correction()


def test_last_step_is_never_guided_by_default(denoisers):
    den = denoisers["unet"]
    clf = make_classifier(den.image_shape)
    for steps in (1, 2, 6, 10, 30):
        term = EntropyGuidance(clf, 0.1, every=1, min_alpha_bar=0)
        log = _StepLog(term)
        out = sample(den, [0], steps=steps, guidance=[term, log], seed=0)
        assert steps - 1 not in log.active_at
        assert out.guided_steps.get("entropy", 0) == len(log.active_at)
    # with 30 steps the last 5 are free of guidance (the predecessor guides 0-24 of 30)
    assert log.active_at == list(range(25))


def test_guided_window_start_stop_every_is_honoured(denoisers):
    den = denoisers["unet"]
    clf = make_classifier(den.image_shape)
    term = EntropyGuidance(clf, 0.1, every=3, start=2, stop=9, min_alpha_bar=0)
    log = _StepLog(term)
    sample(den, [0], steps=12, guidance=[term, log], seed=0)
    assert log.active_at == [2, 5, 8] == term.guided_steps(log.alpha_bar)
    # a negative stop counts from the end; stop = S guides through the last step (ablation)
    assert list(EntropyGuidance(clf, 0.1, every=1, stop=-1).window(5)) == [0, 1, 2, 3]
    assert list(EntropyGuidance(clf, 0.1, every=2, stop=5).window(5)) == [0, 2, 4]


def test_steps_with_tiny_alpha_bar_are_skipped(denoisers):
    den = denoisers["unet"]
    clf = make_classifier(den.image_shape)
    _, schedule = make_schedule(den, 10)
    floor = schedule.alpha_bar[2]  # noisiest first: steps 0 and 1 lie below it
    term = EntropyGuidance(clf, 0.1, every=1, min_alpha_bar=floor)
    log = _StepLog(term)
    sample(den, [0], steps=10, guidance=[term, log], seed=0)
    assert log.active_at[0] == 2 and all(log.alpha_bar[i] >= floor for i in log.active_at)
    assert EntropyGuidance(clf, 0.0).guided_steps(schedule.alpha_bar) == []  # ω = 0 guides nothing


def test_minmax_preprocessing_sees_the_unclamped_decode():
    from practicum.diffusion.guidance import StepState

    seen = {}

    class Spy(nn.Module):
        def forward(self, images):
            seen["spread"] = float(images.detach().std())
            return images.flatten(1)[:, :3] * torch.tensor([1.0, -1.0, 0.5])

    class Clamping(GaussianDenoiser):  # decode clamps, decode_unclamped does not: like the built-ins
        def decode(self, z):
            return z.clamp(-1, 1)

        def decode_unclamped(self, z):
            return z

    den = Clamping(torch.zeros(1, 4, 4))
    x = (2.0 + torch.arange(16.0) / 4).view(1, 1, 4, 4)  # every pixel above 1: a clamp flattens them
    state = StepState(denoiser=den, index=0, num_steps=2, t=0, alpha_bar=0.99, alpha_bar_prev=1.0,
                      sigma=torch.zeros(1, 1, 1, 1), x_t=x, eps=torch.zeros_like(x), x0=x, cond=None,
                      labels=torch.tensor([0]), rows=torch.tensor([0]), scheduler="ddim")
    minmax = EntropyGuidance(Spy(), 0.1, preprocess="minmax", through="learner", x0_blend=False)
    g = minmax.gradient(state)
    assert seen["spread"] > 0.5 and float(g.abs().sum()) > 0  # the image's own range, rescaled
    clamped = EntropyGuidance(Spy(), 0.1, preprocess="clamp", through="learner", x0_blend=False)
    g = clamped.gradient(state)
    assert seen["spread"] == 0.0 and float(g.abs().sum()) == 0.0  # what minmax used to get


def test_shift_averaged_entropy_is_the_mean_over_translated_views(denoisers):
    """shifts=k: the gradient of the mean entropy over k circular translations of x̂0; with no
    room to move (max_shift=0) it is the plain single-view gradient."""
    den = denoisers["unet"]
    clf = make_classifier(den.image_shape)
    state = first_step_state(den, seed=3)
    plain = EntropyGuidance(clf, 0.05, every=1).gradient(state)
    assert torch.allclose(EntropyGuidance(clf, 0.05, every=1, shifts=3, max_shift=0).gradient(state), plain,
                          atol=1e-6)
    shifted = EntropyGuidance(clf, 0.05, every=1, shifts=4, max_shift=2)
    g = shifted.gradient(state)
    assert not torch.allclose(g, plain, atol=1e-6)
    assert torch.equal(g, shifted.gradient(state))  # the views are a function of the step: same bytes again
    # by hand: the same four offsets, each view's entropy, averaged
    offsets = torch.randint(-2, 3, (4, 2), generator=torch.Generator().manual_seed(7919 * (state.index + 1)))
    z = state.x_t.detach().clone().requires_grad_(True)
    ab = state.alpha_bar
    x0 = (z - math.sqrt(1 - ab) * den(z, state.t, state.cond)) / math.sqrt(ab)
    x0 = math.sqrt(1 - ab) * x0 + (1 - math.sqrt(1 - ab)) * z  # the latent form's blend
    views = [torch.roll(den.decode(x0), shifts=(int(a), int(b)), dims=(-2, -1)) for a, b in offsets.tolist()]
    h = torch.stack([entropy_from_logits(clf(v.clamp(-1, 1))) for v in views]).mean(0).sum()
    (expected,) = torch.autograd.grad(h, z)
    assert torch.allclose(g, expected, atol=1e-5)
    with pytest.raises(ConfigError):
        EntropyGuidance(clf, 0.05, shifts=-1)
