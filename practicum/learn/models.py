"""Built-in learner networks for small images, and the registry that names them.

`build_model("cnn", num_classes, image_shape)` gives a small conv net suited to 8x8-32x32
images; `"mlp"` a two-hidden-layer perceptron. Anything that is an `nn.Module` mapping
(N, C, H, W) images in [-1, 1] to (N, num_classes) logits can be used as a learner instead.

Another module can add an architecture with `register_arch(name)`; the model returned by
`build_model` remembers how it was built (`model.practicum_spec`), so a saved learner can be
rebuilt without the caller naming its architecture again.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable

import torch
from torch import nn

from practicum.errors import ConfigError, ModelError

# name -> builder(num_classes, image_shape, width) -> nn.Module
ARCHS: dict[str, Callable[..., nn.Module]] = {}

# Architectures that live in their own (optional) module and register on import.
_LAZY_ARCH_MODULES = ("practicum.learn.resnet", "practicum.learn.resnet50", "practicum.learn.vit")


def register_arch(name: str):
    """Decorator: `@register_arch("resnet18") def build(num_classes, image_shape, width=None)`."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHS[name] = builder
        return builder

    return wrap


class MLP(nn.Module):
    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], width: int = 256):
        super().__init__()
        c, h, w = image_shape
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * h * w, width), nn.ReLU(),
            nn.Linear(width, width), nn.ReLU(),
            nn.Linear(width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class SmallCNN(nn.Module):
    """conv-conv (pool) conv-conv, global average pool, linear.

    Extra stride-2 pooling stages are added until the feature map is at most 8x8, so the same
    builder serves 8x8 digits and 32x32 images at similar cost per output pixel.
    """

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], width: int = 32):
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = [_conv_block(c, width)]
        size = max(h, w)
        while size > 8:  # downsample big inputs early
            layers += [_conv_block(width, width), nn.MaxPool2d(2)]
            size //= 2
        layers += [_conv_block(width, width), nn.MaxPool2d(2) if size >= 4 else nn.Identity(),
                   _conv_block(width, 2 * width), _conv_block(2 * width, 2 * width),
                   nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_arch("mlp")
def _build_mlp(num_classes: int, image_shape: tuple[int, int, int], width: int | None = None) -> nn.Module:
    return MLP(num_classes, image_shape, width or 256)


@register_arch("cnn")
def _build_cnn(num_classes: int, image_shape: tuple[int, int, int], width: int | None = None) -> nn.Module:
    return SmallCNN(num_classes, image_shape, width or 32)


def _load_lazy_archs() -> None:
    for name in _LAZY_ARCH_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(name)


def custom_factory(spec: str) -> Callable[..., nn.Module]:
    """'package.module:factory' → a callable (num_classes, image_shape, width) → nn.Module.

    The factory may also take only (num_classes, image_shape) or only num_classes; it is called
    with as many of those as it accepts.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"learner {spec!r} is not of the form module:factory", "e.g. --learner mypkg.nets:build")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import learner factory {spec!r}: {exc}",
                          "check the module is importable (on PYTHONPATH) and defines the factory") from None
    if not callable(factory):
        raise ConfigError(f"{spec} is not callable", "name a function or class that returns an nn.Module")
    try:
        params = inspect.signature(factory).parameters.values()
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        takes = 3 if any(p.kind == p.VAR_POSITIONAL for p in params) else min(3, len(positional))
    except (TypeError, ValueError):
        takes = 3

    def build(num_classes: int, image_shape: tuple[int, int, int], width: int | None = None) -> nn.Module:
        model = factory(*(num_classes, image_shape, width)[:max(1, takes)])
        if not isinstance(model, nn.Module):
            raise ConfigError(f"{spec} returned {type(model).__name__}, not a torch nn.Module")
        return model

    return build


def build_model(arch: str = "cnn", num_classes: int = 10, image_shape: tuple[int, int, int] = (1, 8, 8),
                width: int | None = None, seed: int | None = None) -> nn.Module:
    """A fresh learner network; with `seed`, its initial weights depend only on the seed."""
    if arch not in ARCHS and ":" not in arch:
        _load_lazy_archs()
    if ":" in arch:  # "module:factory" — any nn.Module from the user's code (CLI --learner, YAML arch)
        builder = custom_factory(arch)
    elif arch not in ARCHS:
        raise ConfigError(f"unknown learner architecture {arch!r}", f"use one of {', '.join(sorted(ARCHS))}")
    else:
        builder = ARCHS[arch]
    if num_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes, not {num_classes}")
    image_shape = tuple(int(v) for v in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ConfigError(f"image_shape must be (channels, height, width), not {image_shape}")
    if seed is None:
        model = builder(num_classes, image_shape, width)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = builder(num_classes, image_shape, width)
    # A saved learner names only a registered architecture (None for a custom factory): loading a
    # learner folder must never import the code a file names.
    model.practicum_spec = {"arch": None if ":" in arch else arch, "num_classes": num_classes,
                            "image_shape": list(image_shape), "width": width}
    return model


def registered_arch(name: object, where: str) -> str:
    """`name` if it is a registered architecture; else one error saying that `where` may name no code."""
    if isinstance(name, str) and name not in ARCHS and ":" not in name:
        _load_lazy_archs()
    if not isinstance(name, str) or name not in ARCHS:
        raise ModelError(f"{where} names the learner architecture {name!r}, which is not a registered one "
                         f"({', '.join(sorted(ARCHS))}); practicum never imports code named in a file",
                         "use a registered architecture, or pass --learner module:factory on the command line")
    return name


def model_from_spec(spec: dict, where: str = "the saved learner") -> nn.Module:
    """Rebuild a saved learner's network from its spec: registered architectures only."""
    arch = registered_arch(spec.get("arch"), where)
    return build_model(arch, spec["num_classes"], tuple(spec["image_shape"]), spec.get("width"))


def check_arch(arch: str) -> None:
    """Refuse an unknown registered architecture name at once (before any data or model is loaded)."""
    if ":" not in arch and arch not in ARCHS:
        _load_lazy_archs()
        if arch not in ARCHS:
            raise ConfigError(f"unknown learner architecture {arch!r}", f"use one of {', '.join(sorted(ARCHS))}")
