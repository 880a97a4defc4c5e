"""Gradient ascent on the pixels: the pieces it shares, class visualization (the seeds' recipe) and DeepDream."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.config import require
from genlab.nn import gaussian_blur
from genlab.progress import progress_bar

OnStep = Callable[[int, Tensor], None]  # (steps done, from 1; current images in [0, 1]) -> None
Objective = Callable[[Tensor], Tensor]  # images (N, C, H, W) -> (N,) values to ascend


# -- pieces the gradient-ascent methods share --------------------------------------------------------

def roll(x: Tensor, shift: tuple[int, int]) -> Tensor:
    """Shift images (N, C, H, W) circularly by (dy, dx) pixels; no pixel is lost, so it can be undone exactly."""
    return torch.roll(x, shifts=shift, dims=(-2, -1))


def unroll(x: Tensor, shift: tuple[int, int]) -> Tensor:
    """Undo roll(x, shift)."""
    return roll(x, (-shift[0], -shift[1]))


def random_shift(jitter: int, generator: torch.Generator) -> tuple[int, int]:
    """(dy, dx), each uniform in [-jitter, jitter] pixels."""
    if jitter == 0:
        return 0, 0
    dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
    return dy, dx


def rms_normalised(grad: Tensor) -> Tensor:
    """Each image's gradient over its root-mean-square, so a step of lr moves pixels by about lr."""
    rms = grad.pow(2).flatten(1).mean(1).sqrt().clamp_min(1e-12)
    return grad / rms.view(-1, *[1] * (grad.dim() - 1))


def ascent_step(objective: Objective, x: Tensor, lr: float, shift: tuple[int, int] = (0, 0),
                box: bool = False) -> Tensor:
    """One normalised gradient-ascent step on the (N,) objectives, taken on x rolled by `shift`, rolled back.

    box: pixels in [0, 1] will be clipped, so gradient that pushes a pixel already at 0 or 1 further out is
    dropped before normalising; the step then goes to the pixels that can still move.
    """
    rolled = roll(x, shift).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(rolled).sum(), rolled)
    rolled = rolled.detach()
    if box:
        grad = grad.masked_fill(((rolled >= 1) & (grad > 0)) | ((rolled <= 0) & (grad < 0)), 0)
    return unroll(rolled + lr * rms_normalised(grad), shift)


def cosine_decay(start: float, end: float, step: int, steps: int) -> float:
    """The value at `step` (0 to steps - 1) of a half cosine from `start` at the first step to `end` at the last."""
    t = step / max(1, steps - 1)
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * t))


def resize(x: Tensor, size: Sequence[int]) -> Tensor:
    """Images (N, C, H, W) -> (N, C, *size), bilinear; antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)


def check_ascent(steps: int, lr: float, jitter: int) -> None:
    require(steps >= 1, f"steps must be at least 1, got {steps}")
    require(lr > 0 and math.isfinite(lr), f"the learning rate must be a positive number, got {lr}")
    require(jitter >= 0, f"jitter is a shift in pixels and must be >= 0, got {jitter}")


# -- class visualization (Simonyan, Vedaldi & Zisserman 2014) -------------------------------------------

def noise_images(n: int, channels: int, size: Sequence[int], seed: int = 0, mean: float = 0.5,
                 spread: float = 0.1) -> Tensor:
    """(n, channels, *size) grey level `mean` plus Gaussian noise of std `spread`, clipped to [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return (mean + spread * torch.randn(n, channels, *size, generator=generator)).clamp(0, 1)


def class_visualization(logits: Callable[[Tensor], Tensor], targets: Sequence[int] | Tensor, start: Tensor, *,
                        steps: int = 200, lr: float = 0.02, final_lr_fraction: float = 1.0, l2: float = 0.01,
                        jitter: int = 1, blur_every: int = 4, blur_sigma: float = 0.5, blur_until: float = 1.0,
                        clip: bool = True, seed: int = 0, progress: bool = False,
                        on_step: OnStep | None = None) -> Tensor:
    """Images (N, C, H, W) in [0, 1] that ascend logit[target] - l2 * ||x||^2, one per target, from `start`.

    Each step: a Gaussian blur every `blur_every` steps (0: never) during the first `blur_until` of the steps,
    a random roll of up to `jitter` pixels, a normalised gradient step on the rolled image, the roll undone,
    and (clip) a clamp to [0, 1]. The step moves pixels by lr RMS at first and by lr * final_lr_fraction at
    the last step, along a half cosine (1: constant), so the picture settles instead of jumping between rolls.
    """
    check_ascent(steps, lr, jitter)
    require(0 < final_lr_fraction <= 1, f"final_lr_fraction is the last step's share of lr, in (0, 1]; got "
                                        f"{final_lr_fraction}")
    require(l2 >= 0, f"l2 must be >= 0, got {l2}")
    require(blur_every >= 0 and blur_sigma > 0, f"blur_every must be >= 0 (0: no blur) and blur_sigma > 0, got "
                                                f"{blur_every} and {blur_sigma}")
    require(0 <= blur_until <= 1, f"blur_until is the fraction of the steps that blur, in [0, 1]; got {blur_until}")
    targets = torch.as_tensor(targets, dtype=torch.long, device=start.device).view(-1, 1)
    require(targets.shape[0] == start.shape[0], f"one start image per target: {start.shape[0]} images, "
                                                f"{targets.shape[0]} targets")

    def objective(x: Tensor) -> Tensor:  # the class score alone (not the softmax), minus the L2 penalty
        return logits(x).gather(1, targets)[:, 0] - l2 * x.pow(2).flatten(1).sum(1)

    generator = torch.Generator().manual_seed(seed)
    x = start.detach().clone()
    with progress_bar(steps, "class visualization", enabled=progress) as bar:
        for step in range(steps):
            # the blur shapes the picture while the steps are large; the small last steps sharpen it unblurred
            if blur_every and step and step % blur_every == 0 and step < blur_until * steps:
                x = gaussian_blur(x, blur_sigma)  # before the step, so the last thing done is a gradient step
            step_lr = cosine_decay(lr, lr * final_lr_fraction, step, steps)
            x = ascent_step(objective, x, step_lr, random_shift(jitter, generator), box=clip)
            x = x.clamp(0, 1) if clip else x
            bar.update()
            if on_step is not None:
                on_step(step + 1, x)
    return x


@torch.no_grad()
def class_probabilities(logits: Callable[[Tensor], Tensor], x: Tensor, targets: Sequence[int] | Tensor) -> Tensor:
    """(N,) softmax probability of each image's target class, no jitter."""
    targets = torch.as_tensor(targets, dtype=torch.long, device=x.device).view(-1, 1)
    return logits(x).softmax(1).gather(1, targets)[:, 0]


# -- DeepDream (Mordvintsev, Olah & Tyka 2015) ------------------------------------------------------------

def dream_objective(activation: Callable[[Tensor], Tensor]) -> Objective:
    """x -> 0.5 * ||a(x)||^2 per image: its gradient at the layer is the activation a itself."""
    return lambda x: 0.5 * activation(x).pow(2).flatten(1).sum(1)


@torch.no_grad()
def activation_norm(activation: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """(N,) L2 norm of a layer's output per image."""
    return activation(x).flatten(1).norm(dim=1)


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """(H, W) of each octave, smallest first; the last is the image's own size."""
    return [(max(1, round(height / scale ** k)), max(1, round(width / scale ** k)))
            for k in reversed(range(octaves))]


def deep_dream(activation: Callable[[Tensor], Tensor], image: Tensor, *, steps: int = 100, lr: float = 0.05,
               octaves: int = 2, octave_scale: float = 1.4, jitter: int = 1, clip: bool = True, seed: int = 0,
               progress: bool = False, on_step: OnStep | None = None) -> Tensor:
    """`image` (N, C, H, W) in [0, 1] with what a layer sees amplified: ascend 0.5 * ||a(x)||^2.

    Octaves run coarse to fine, `steps` each: the detail added at one scale is carried up to the next, so
    large patterns grow at small scales and fine texture at full size. on_step gets full-size images.
    """
    check_ascent(steps, lr, jitter)
    require(octaves >= 1 and octave_scale > 1, f"octaves must be >= 1 and octave_scale > 1, got {octaves} and "
                                               f"{octave_scale}")
    sizes = octave_sizes(image.shape[-2], image.shape[-1], octaves, octave_scale)
    require(min(sizes[0]) >= 4, f"{octaves} octaves at scale {octave_scale} shrink a {tuple(image.shape[-2:])} "
                                f"image to {sizes[0]}; use fewer octaves or a larger image")
    objective, generator = dream_objective(activation), torch.Generator().manual_seed(seed)
    image = image.detach()
    detail, done = torch.zeros_like(resize(image, sizes[0])), 0
    with progress_bar(steps * octaves, "deep dream", enabled=progress) as bar:
        for size in sizes:
            base = resize(image, size)
            x = base + resize(detail, size)
            for _ in range(steps):
                x = ascent_step(objective, x, lr, random_shift(jitter, generator), box=clip)
                x = x.clamp(0, 1) if clip else x
                bar.update()
                done += 1
                if on_step is not None:
                    on_step(done, resize(x, image.shape[-2:]))
            detail = x - base
    return x
