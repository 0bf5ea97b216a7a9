"""ResNet-50 (He et al. 2016, the "v1.5" variant: stride on the 3x3 conv), without torchvision.

Bottleneck blocks 3-4-6-3 with expansion 4, batch norm, the ImageNet stem (7x7 stride-2 conv +
3x3 max-pool) and global average pooling; 25.6M parameters at 1000 classes, the standard shape,
so a pretrained state dict with the usual names can be adapted. `width` scales the base width
(64), which keeps tests tiny. Inputs are normalised with ImageNet mean/std
(`practicum.learn.streaming.NORMALIZATION`). Registered as `resnet50`.
"""

from __future__ import annotations

import torch
from torch import nn

from practicum.learn.models import register_arch


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, mid: int, stride: int):
        super().__init__()
        cout = mid * self.expansion
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        nn.init.zeros_(self.bn3.weight)  # each residual branch starts as the identity (Goyal et al.)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64, blocks=(3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers, cin = [], width
        for i, n in enumerate(blocks):
            mid = width * 2 ** i
            stage = []
            for j in range(n):
                stage.append(Bottleneck(cin, mid, 2 if (j == 0 and i > 0) else 1))
                cin = mid * Bottleneck.expansion
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.pool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


@register_arch("resnet50")
def resnet50(num_classes: int, image_shape: tuple[int, int, int], width: int | None = None) -> ResNet50:
    return ResNet50(num_classes, int(image_shape[0]), width or 64)


__all__ = ["Bottleneck", "ResNet50", "resnet50"]
