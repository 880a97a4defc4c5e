"""The exponential moving average of the weights (--ema): updated after every optimizer step, saved with every
epoch (in the resumable state for --resume, and as the whole model with the average in place for the readers)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from genlab.errors import RunError
from genlab.models.contract import GAN


class WeightAverage:
    """avg <- decay * avg + (1 - decay) * w after each step, over the floating-point parameters of the model (of
    a GAN's generator: the network that makes the samples), starting from the weights it is built with."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.prefix = "generator." if isinstance(model, GAN) else ""
        tracked = model.generator if isinstance(model, GAN) else model
        named = [(name, p) for name, p in tracked.named_parameters() if p.is_floating_point()]
        self.names = [self.prefix + name for name, _ in named]
        self.live = [p for _, p in named]
        self.average = [p.detach().clone() for p in self.live]

    @torch.no_grad()
    def update(self) -> None:
        """One step of the average: a single foreach kernel, no host sync."""
        torch._foreach_lerp_(self.average, self.live, 1.0 - self.decay)

    def state_dict(self) -> dict[str, Tensor]:
        """The averages by the model's parameter names, on the CPU (once per epoch)."""
        return {name: value.detach().cpu().clone() for name, value in zip(self.names, self.average)}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Tensor] | None, source: Path) -> None:
        """Continue the average a checkpoint kept; a checkpoint without one, or of other shapes, is refused."""
        if state is None:
            raise RunError(f"{source} holds no moving average of the weights, though the run was trained with "
                           f"--ema; delete the run or restore the file")
        shapes = {name: tuple(value.shape) for name, value in state.items()}
        wanted = {name: tuple(value.shape) for name, value in zip(self.names, self.average)}
        if shapes != wanted:
            raise RunError(f"{source}: the moving average of the weights does not fit this model (a checkpoint of "
                           f"another model?); delete the run or restore the file")
        for name, value in zip(self.names, self.average):
            value.copy_(state[name])

    def model_weights(self, model: nn.Module) -> dict[str, Tensor]:
        """The model's state dict with the averages in place of the trained parameters (buffers, and a GAN's
        discriminator, as trained)."""
        return {**model.state_dict(), **dict(zip(self.names, self.average))}

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The averages in the model's parameters for the duration (the epoch's pictures), the trained ones after."""
        with torch.no_grad():
            trained = [p.detach().clone() for p in self.live]
            torch._foreach_copy_(self.live, self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.live, trained)
