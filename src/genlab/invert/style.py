"""Style transfer (Gatys, Ecker & Bethge 2016): match one image's features and another's Gram matrices."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.config import require
from genlab.invert.ascent import OnStep, check_ascent, noise_images, resize
from genlab.progress import progress_bar

Features = Callable[[Tensor, Sequence[str]], dict[str, Tensor]]  # images, layer names -> activations


# -- style transfer (Gatys, Ecker & Bethge 2016) -------------------------------------------------------

def gram(features: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, C) channel co-activations F F^T / (C H W): comparable across layers and sizes."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def total_variation(x: Tensor) -> Tensor:
    """(N,) mean squared difference between vertically and horizontally neighbouring pixels."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).pow(2).flatten(1).mean(1)
    dx = (x[..., :, 1:] - x[..., :, :-1]).pow(2).flatten(1).mean(1)
    return dy + dx


def covering(style: Tensor, size: Sequence[int]) -> Tensor:
    """The style image (N, C, h, w) scaled, aspect kept, to just cover `size` (H, W), then centre-cropped to it.

    A Gram matrix averages over positions, yet a network's padding adds features along the borders that depend on
    the image's size: TensorFlow's "same" padding (EfficientNet-Lite) pads a stride-2 layer's even input one row
    less before than after and an odd one alike, so a 223-row style image and a 170-row content image are padded
    differently along the top. Taken at another size, the style's Grams ask for border features the image cannot
    get from its own padding, and Adam paints the pixels along that border to fake them (an orange stripe on the
    top rows). Taken at the very size of the image optimised, every border is padded alike.
    """
    height, width = style.shape[-2:]
    scale = max(size[0] / height, size[1] / width)
    scaled = resize(style, (max(size[0], round(height * scale)), max(size[1], round(width * scale))))
    top, left = (scaled.shape[-2] - size[0]) // 2, (scaled.shape[-1] - size[1]) // 2
    return scaled[..., top:top + size[0], left:left + size[1]]


@dataclass(frozen=True)
class StyleTargets:
    """What the image should match: content features and style Gram matrices, per layer."""

    content: dict[str, Tensor]  # layer -> (1, C, H, W) features of the content image
    grams: dict[str, Tensor]  # layer -> (1, C, C) Gram matrix of the style image
    style_weights: dict[str, float]  # layer -> weight of its Gram loss


@torch.no_grad()
def style_targets(features: Features, content: Tensor, style: Tensor, content_layers: Sequence[str],
                  style_layers: Mapping[str, float] | Sequence[str]) -> StyleTargets:
    """Features of `content` and Gram matrices of `style` ((1, C, H, W) in [0, 1]), the style brought to the
    content's size first (covering: scaled to cover it, centre-cropped), so both are padded alike."""
    weights = dict(style_layers) if isinstance(style_layers, Mapping) else dict.fromkeys(style_layers, 1.0)
    require(len(content_layers) > 0 and len(weights) > 0, "style transfer needs at least one content layer and "
                                                           "one style layer")
    style = covering(style, content.shape[-2:])
    return StyleTargets(dict(features(content, list(content_layers))),
                        {k: gram(v) for k, v in features(style, list(weights)).items()}, weights)


def style_losses(features: Features, x: Tensor, targets: StyleTargets) -> dict[str, Tensor]:
    """Scalars: content (feature MSE summed over layers), style (weighted sum of squared Gram differences), tv."""
    acts = features(x, list(dict.fromkeys([*targets.content, *targets.grams])))
    content = sum(F.mse_loss(acts[name], target) for name, target in targets.content.items())
    style = sum(weight * (gram(acts[name]) - targets.grams[name]).pow(2).sum()
                for name, weight in targets.style_weights.items())
    return {"content": content, "style": style, "tv": total_variation(x).mean()}


@dataclass(frozen=True)
class StyleResult:
    """The optimised image (1, C, H, W) in [0, 1] and the losses after 0, 1, ..., steps steps."""

    image: Tensor
    history: list[dict[str, float]]


def pixel_optimizer(x: Tensor, optimizer: str, lr: float | None) -> torch.optim.Optimizer:
    """Adam (lr default 0.02, pixel units) or L-BFGS (lr default 1) over the pixels x."""
    if optimizer == "lbfgs":  # one iteration per step() call; the curvature history persists across calls
        return torch.optim.LBFGS([x], lr=lr or 1.0, max_iter=1, history_size=50)
    return torch.optim.Adam([x], lr=lr or 0.02)


def loss_record(losses: dict[str, Tensor], weights: dict[str, float]) -> tuple[Tensor, dict[str, float]]:
    """The weighted total, and every loss as a float (a CPU-GPU sync)."""
    total = sum(weights[name] * losses[name] for name in weights)
    return total, {**{k: float(v.detach()) for k, v in losses.items()}, "total": float(total.detach())}


def style_transfer(features: Features, content: Tensor, style: Tensor, *, content_layers: Sequence[str],
                   style_layers: Mapping[str, float] | Sequence[str], steps: int = 200, optimizer: str = "adam",
                   lr: float | None = None, content_weight: float = 1.0, style_weight: float = 10.0,
                   tv_weight: float = 5.0, init: str = "content", seed: int = 0, progress: bool = False,
                   on_step: OnStep | None = None) -> StyleResult:
    """Minimise content_weight * content + style_weight * style + tv_weight * tv over the pixels (Gatys et al.).

    optimizer: "adam" (lr default 0.02, in pixel units) or "lbfgs" (lr default 1); init: "content" or
    "noise". Pixels are clamped to [0, 1] after each step. The loss history costs one CPU-GPU sync per step.
    """
    require(optimizer in ("lbfgs", "adam"), f"optimizer must be lbfgs or adam, got {optimizer!r}")
    require(init in ("content", "noise"), f"init must be content or noise, got {init!r}")
    check_ascent(steps, lr if lr is not None else 1.0, 0)
    weights = {"content": content_weight, "style": style_weight, "tv": tv_weight}
    require(min(weights.values()) >= 0, f"loss weights must be >= 0, got {weights}")
    targets = style_targets(features, content, style, content_layers, style_layers)
    x = content.detach().clone() if init == "content" else \
        noise_images(1, content.shape[1], content.shape[-2:], seed, spread=0.25).to(content.device)
    x.requires_grad_(True)
    opt, history = pixel_optimizer(x, optimizer, lr), []

    def closure() -> Tensor:  # evaluated once per step, at the image before the step
        opt.zero_grad()
        total, record = loss_record(style_losses(features, x, targets), weights)
        total.backward()
        history.append(record)
        return total

    with progress_bar(steps, "style transfer", enabled=progress) as bar:
        for step in range(steps):
            opt.step(closure)
            with torch.no_grad():
                x.clamp_(0, 1)
            bar.update()
            if on_step is not None:
                on_step(step + 1, x.detach())
    with torch.no_grad():
        final = loss_record(style_losses(features, x, targets), weights)[1]
    return StyleResult(x.detach(), history[:steps] + [final])
