"""The built-in generator: a small class-conditional pixel UNet for the 1×8×8 digits.

It is trained by `practicum diffusion train` on the digits' train split only and committed as
`practicum/assets/digits_unet.safetensors` with a JSON sidecar (`digits_unet.json`) that holds
its config, data split, seed, measured quality and the exact command that reproduces it.
Class id 10 is the null class (trained with label dropout) for classifier-free guidance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from practicum.diffusion.denoisers import PixelUNetDenoiser
from practicum.errors import ModelError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUILTIN_WEIGHTS = ASSETS / "digits_unet.safetensors"
BUILTIN_SIDECAR = ASSETS / "digits_unet.json"

# Works directly at 8×8: one down-sampling (8 → 4) with self-attention at 4×4; ~0.7 M parameters,
# small enough to train in minutes on a shared 2-core CPU.
BUILTIN_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 8,
    "in_channels": 1,
    "out_channels": 1,
    "layers_per_block": 1,
    "block_out_channels": [32, 64],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8,
    "attention_head_dim": 32,
    "num_class_embeds": 11,
}

BUILTIN_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "epsilon",
    "clip_sample": True,
    "timestep_spacing": "trailing",
}

# Sampling defaults for the built-in model (chosen by the quality benchmark, see docs/benchmarks.md).
BUILTIN_SAMPLING: dict[str, Any] = {"steps": 50, "cfg_scale": 2.0, "scheduler": "ddim", "eta": 0.0}


def builtin_denoiser(unet_config: dict[str, Any] | None = None,
                     scheduler_config: dict[str, Any] | None = None) -> PixelUNetDenoiser:
    """A randomly initialised built-in architecture (the trainer starts from this)."""
    from diffusers import UNet2DModel

    unet = UNet2DModel(**(unet_config or BUILTIN_UNET_CONFIG))
    return PixelUNetDenoiser(unet, scheduler_config or BUILTIN_SCHEDULER_CONFIG, num_classes=10, null_class=10,
                             class_names=[str(c) for c in range(10)], image_shape=(1, 8, 8))


def read_sidecar(path: Path = BUILTIN_SIDECAR) -> dict[str, Any]:
    if not path.exists():
        raise ModelError(f"the built-in model's sidecar {path} is missing",
                         "reinstall practicum or retrain it with `practicum diffusion train`")
    return json.loads(path.read_text())


def load_builtin(weights: Path = BUILTIN_WEIGHTS, sidecar: Path = BUILTIN_SIDECAR) -> PixelUNetDenoiser:
    """The committed built-in digits model, in eval mode."""
    from safetensors.torch import load_file

    if not weights.exists():
        raise ModelError(f"the built-in model's weights {weights} are missing",
                         "reinstall practicum or retrain them with `practicum diffusion train`")
    meta = read_sidecar(sidecar)
    den = builtin_denoiser(meta.get("unet_config"), meta.get("scheduler_config"))
    state = load_file(weights)
    try:
        den.unet.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as exc:
        raise ModelError(f"{weights} does not match the built-in architecture: {str(exc).splitlines()[0]}",
                         "retrain it with `practicum diffusion train`") from None
    den.sampling_defaults = dict(BUILTIN_SAMPLING, **meta.get("sampling", {}))
    return den.eval()


def sampling_defaults(denoiser) -> dict[str, Any]:
    """The sampling settings a model recommends (the built-in's are tuned; SD and DiT: their
    papers' values, see practicum.diffusion.model_defaults)."""
    from practicum.diffusion.model_defaults import default_sampling

    return default_sampling(denoiser)
