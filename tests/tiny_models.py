"""The tiny random diffusers models the tests share: an 8×8, 1-channel, 10-class (+1 null) pixel UNet.

One definition, so every test that needs "a digits-shaped generator" builds the same network.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_UNET = dict(layers_per_block=1, block_out_channels=[8, 16], down_block_types=["DownBlock2D", "DownBlock2D"],
                 up_block_types=["UpBlock2D", "UpBlock2D"], norm_num_groups=4)


def save_tiny_pixel_unet(folder: Path, *, seed: int = 0, clip_sample: bool = True) -> Path:
    """Save a randomly initialised class-conditional 8×8 UNet and its DDPM schedule as a local diffusers folder.

    The global torch RNG is left as it was, so building the model does not shift later draws in a test.
    """
    import torch
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        UNet2DModel(sample_size=8, in_channels=1, out_channels=1, num_class_embeds=11, **TINY_UNET) \
            .save_pretrained(folder)
    (Path(folder) / "scheduler_config.json").write_text(json.dumps(
        {"num_train_timesteps": 1000, "beta_schedule": "linear", "prediction_type": "epsilon",
         "clip_sample": clip_sample}))
    return Path(folder)


def save_tiny_rater(path: Path) -> Path:
    """A tiny random digits rater (8×8 inputs, 10 classes) written as `path` (rater.safetensors)."""
    import torch

    from practicum.select.nets import RaterNet
    from practicum.select.rater import save_rater

    torch.manual_seed(0)
    save_rater(path, RaterNet((1, 8, 8), 10, 8, 4, 8, "multi"),
               {"format": "practicum-rater/1", "input_shape": [1, 8, 8], "num_classes": 10, "feature_dim": 8,
                "width": 4, "head_hidden": 8, "heads": "multi"})
    return path
