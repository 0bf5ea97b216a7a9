"""Precision, device and memory settings of a generator and its learner.

The rules, so that a bf16/fp16 generator behaves like the fp32 one:
- the sampler's state (x_t, ε, x̂0, the schedule ᾱ) stays float32; only the networks run in
  the chosen dtype. `Denoiser.predict`/`decode`/`encode` cast their inputs to the network's
  dtype and their outputs back to float32 (explicit casts, one place).
- the schedule table `alphas_cumprod` is a plain float64 CPU tensor, not a module buffer, so
  `denoiser.to(torch.bfloat16)` cannot round its first values to 1.0.
- the generator is frozen (`requires_grad=False` on every parameter): guidance gradients flow
  only to x_t, and autograd keeps no parameter-gradient buffers.
- the learner may run in another dtype: `ToDtype` casts the decoded images to the learner's
  dtype and its logits back to float32.
- fp16 overflow gives NaN/inf samples, which the sampler's redraw logic already catches.

`prepare_denoiser` applies all of this plus the memory switches (gradient checkpointing of the
denoiser network and the VAE decoder, VAE slicing).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from practicum.runtime import DTYPE_NAMES, DTYPES, parse_dtype, resolve_device  # noqa: F401  (re-exported)


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no parameter gradients (a generator is never trained by guidance)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def prepare_denoiser(den, *, device: "str | torch.device | None" = None, dtype: "str | torch.dtype | None" = None,
                     gradient_checkpointing: bool = False, vae_slicing: bool = False):
    """Frozen, on `device`, networks in `dtype`; optional memory switches. Returns `den`."""
    freeze(den)
    if device is not None:
        den.to(resolve_device(device))
    if dtype is not None:
        den.to(parse_dtype(dtype))
    for name in ("unet", "transformer"):
        net = getattr(den, name, None)
        if net is not None and hasattr(net, "enable_gradient_checkpointing"):
            if gradient_checkpointing:
                net.enable_gradient_checkpointing()
            elif getattr(net, "is_gradient_checkpointing", False):
                net.disable_gradient_checkpointing()
    vae = getattr(den, "vae", None)
    if vae is not None:
        if gradient_checkpointing and hasattr(vae, "enable_gradient_checkpointing"):
            vae.enable_gradient_checkpointing()
        if hasattr(vae, "enable_slicing"):
            vae.enable_slicing() if vae_slicing else vae.disable_slicing()
    return den


def module_dtype(module: nn.Module) -> torch.dtype:
    for p in module.parameters():
        return p.dtype
    return torch.float32


def module_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


class ToDtype(nn.Module):
    """Wrap a network so it takes any floating input (cast to its own dtype and device) and
    returns float32: the explicit bridge between a generator's dtype and a learner's."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(module_device(self.net), module_dtype(self.net))).float()


class SavedTensorMeter:
    """Bytes autograd holds for backward, tracked live (the dominant memory of a guidance step).

    `with meter.track(): ...` counts every tensor saved for backward while it is alive; `peak`
    is the largest total seen. Deterministic and device-independent, so a CPU test can show how
    guidance memory scales with the micro-batch.
    """

    def __init__(self):
        self.live = 0
        self.peak = 0

    @contextmanager
    def track(self) -> Iterator["SavedTensorMeter"]:
        meter = self

        class _Held:
            __slots__ = ("tensor", "nbytes")

            def __init__(self, tensor: torch.Tensor):
                self.tensor = tensor
                self.nbytes = tensor.numel() * tensor.element_size()
                meter.live += self.nbytes
                meter.peak = max(meter.peak, meter.live)

            def __del__(self):
                meter.live -= self.nbytes

        def pack(tensor):
            return _Held(tensor)

        def unpack(held):
            return held.tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            yield self


__all__ = ["DTYPES", "DTYPE_NAMES", "SavedTensorMeter", "ToDtype", "freeze", "module_device",
           "module_dtype", "parse_dtype", "prepare_denoiser", "resolve_device"]
