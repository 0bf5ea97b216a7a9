"""`load_denoiser(spec)`: the one way to open a generator, whatever it is (a built-in model, a
`practicum diffusion train` folder, a local diffusers folder or a dict config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from practicum.diffusion.builtin import is_trained_folder, load_builtin, load_named_builtin, load_trained
from practicum.diffusion.denoisers import Denoiser, load_folder, build_denoiser


def load_denoiser(spec: "str | Path | dict[str, Any] | Denoiser", **options: Any) -> Denoiser:
    """Open a denoiser.

    - `"builtin"` or `"builtin:digits"`: the committed digits model; `"builtin:fashion"`: the
      committed Fashion-MNIST model (practicum/assets). Commands resolve a plain `builtin`
      against their `--data` first (`practicum.diffusion.builtin.builtin_for`).
    - a folder written by `practicum diffusion train` (denoiser.safetensors + denoiser.json).
    - a path: a local diffusers folder, opened with `local_files_only` (never downloads). A
      pipeline folder (model_index.json naming DDPM/DDIM, StableDiffusion or DiT pipelines) or a
      bare `UNet2DModel` folder. Options: `class_names`, `prompt_embeds` (SD without text encoder).
    - a dict: `{"kind": "unet"|"sd"|"dit", "unet"|"transformer": {...}, "vae": {...},
      "scheduler": {...}, ...}` builds a randomly initialised model (tests, experiments).
    """
    if isinstance(spec, Denoiser):
        return spec
    if isinstance(spec, dict):
        return build_denoiser(spec, **options)
    if str(spec) == "builtin":
        return load_builtin()
    if str(spec).startswith("builtin:"):
        return load_named_builtin(str(spec).partition(":")[2])
    if is_trained_folder(Path(spec)):
        return load_trained(Path(spec))
    return load_folder(Path(spec), **options)
