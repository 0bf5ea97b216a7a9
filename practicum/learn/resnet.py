"""The distillation students of the IDC / MinimaxDiffusion protocol, without torchvision.

- `resnet18`: ResNet-18 (BasicBlock, 2-2-2-2) with instance norm, as the hard-label protocol uses.
- `resnetap10`: ResNet-10 (BasicBlock, 1-1-1-1) that downsamples with 2x2 average pooling
  instead of strided convolutions ("AP"), the headline network of the MGD³ tables.
- `convnet`: ConvNet-D (conv3x3-norm-ReLU-avgpool repeated D times, then linear), width 128 and
  instance norm by default; D is 6 for 224-pixel inputs and shrinks to fit small images.

Inputs of 64 pixels or more get the ImageNet stem (7x7 stride-2 conv + max-pool); smaller ones
a 3x3 stride-1 stem, so 8x8 digits and 32x32 images keep enough resolution. Instance norm is
`GroupNorm(C, C)` (one group per channel, affine), which behaves the same in train and eval.
All three register with `practicum.learn.models.build_model` by name.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from practicum.errors import ConfigError
from practicum.learn.models import register_arch

NORMS = ("instance", "batch", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm {kind!r}", f"use one of {', '.join(NORMS)}")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection.

    With `pool_downsample` the stride is replaced by a 2x2 average pool after the first
    convolution (and in the shortcut), as in ResNetAP.
    """

    def __init__(self, cin: int, cout: int, stride: int, norm: str, pool_downsample: bool):
        super().__init__()
        conv_stride = 1 if pool_downsample else stride
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=conv_stride, padding=1, bias=False)
        self.pool = nn.AvgPool2d(2) if (pool_downsample and stride > 1) else nn.Identity()
        self.norm1 = make_norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = make_norm(norm, cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 1, stride=conv_stride, bias=False)]
            if pool_downsample and stride > 1:
                layers.append(nn.AvgPool2d(2))
            layers.append(make_norm(norm, cout))
            self.shortcut = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.pool(self.conv1(x))))
        out = self.norm2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, blocks: tuple[int, ...], num_classes: int, image_shape: tuple[int, int, int],
                 width: int = 64, norm: str = "instance", pool_downsample: bool = False):
        super().__init__()
        channels, height, _ = image_shape
        if height >= 64:  # ImageNet stem: 224 -> 56 before the first stage
            self.stem = nn.Sequential(nn.Conv2d(channels, width, 7, stride=2, padding=3, bias=False),
                                      make_norm(norm, width), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
            size = math.ceil(height / 4)
        else:
            self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1, bias=False),
                                      make_norm(norm, width), nn.ReLU())
            size = height
        stages: list[nn.Module] = []
        cin = width
        for index, count in enumerate(blocks):
            cout = width * 2**index
            # Stop halving once the map is 1 pixel wide, so tiny inputs still run.
            stride = 2 if (index > 0 and size >= 2) else 1
            size = size // stride
            for b in range(count):
                stages.append(BasicBlock(cin, cout, stride if b == 0 else 1, norm, pool_downsample))
                cin = cout
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(cin, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvNet(nn.Module):
    """ConvNet-D: [conv3x3 - norm - ReLU - avgpool2] x depth, then a linear classifier."""

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], width: int = 128,
                 depth: int | None = None, norm: str = "instance"):
        super().__init__()
        channels, height, _ = image_shape
        max_depth = max(1, int(math.log2(max(height, 2))) - 1)  # keep at least a 2x2 map
        depth = min(6 if depth is None else depth, max_depth)
        layers: list[nn.Module] = []
        cin, size = channels, height
        for _ in range(depth):
            layers += [nn.Conv2d(cin, width, 3, padding=1), make_norm(norm, width), nn.ReLU(), nn.AvgPool2d(2)]
            cin, size = width, size // 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width * size * size, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resnet18(num_classes: int, image_shape: tuple[int, int, int], width: int | None = None,
             norm: str = "instance") -> ResNet:
    return ResNet((2, 2, 2, 2), num_classes, image_shape, width or 64, norm, pool_downsample=False)


def resnetap10(num_classes: int, image_shape: tuple[int, int, int], width: int | None = None,
               norm: str = "instance") -> ResNet:
    return ResNet((1, 1, 1, 1), num_classes, image_shape, width or 64, norm, pool_downsample=True)


def convnet(num_classes: int, image_shape: tuple[int, int, int], width: int | None = None,
            depth: int | None = None, norm: str = "instance") -> ConvNet:
    return ConvNet(num_classes, image_shape, width or 128, depth, norm)


register_arch("resnet18")(resnet18)
register_arch("resnetap10")(resnetap10)
register_arch("convnet")(convnet)

__all__ = ["BasicBlock", "ConvNet", "ResNet", "convnet", "make_norm", "resnet18", "resnetap10"]
