"""ViT-B/16 (Dosovitskiy et al. 2021), the learner of every Deliberate Practice experiment,
without torchvision.

Patch embedding (a stride-16 conv), a class token, learned position embeddings, pre-norm
transformer blocks (multi-head self-attention via `scaled_dot_product_attention`, GELU MLP of
4x width) and a linear head on the final class token. ViT-B/16: width 768, depth 12, 12 heads,
86M parameters at 224². `width` overrides the embedding width (heads = width // 64, at least 1)
for small experiments; `vit_tiny` is a 192-wide, 12-deep, 3-head model. Inputs are normalised
with ImageNet mean/std. Registered as `vit_b16` and `vit_tiny`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from practicum.errors import ConfigError
from practicum.learn.models import register_arch


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], patch: int = 16, dim: int = 768,
                 depth: int = 12, heads: int = 12):
        super().__init__()
        c, h, w = image_shape
        if h % patch or w % patch:
            raise ConfigError(f"images of {h}x{w} do not split into {patch}x{patch} patches",
                              f"resize the data to a multiple of {patch} (224 for ViT-B/16)")
        if dim % heads:
            raise ConfigError(f"width {dim} is not divisible by {heads} heads")
        self.patch_embed = nn.Conv2d(c, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, (h // patch) * (w // patch) + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.head.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        return self.norm(self.blocks(x))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_arch("vit_b16")
def vit_b16(num_classes: int, image_shape: tuple[int, int, int], width: int | None = None) -> VisionTransformer:
    dim = width or 768
    return VisionTransformer(num_classes, image_shape, 16, dim, 12, max(1, dim // 64))


@register_arch("vit_tiny")
def vit_tiny(num_classes: int, image_shape: tuple[int, int, int], width: int | None = None) -> VisionTransformer:
    dim = width or 192
    return VisionTransformer(num_classes, image_shape, 16, dim, 12, max(1, dim // 64))


__all__ = ["VisionTransformer", "vit_b16", "vit_tiny"]
