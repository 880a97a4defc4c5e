"""The step shapes the trainer knows: one optimizer (with labels for classifiers), the GAN's two, and a model's
with an auxiliary network (FactorVAE's discriminator); and the same steps under torchrun, each network wrapped in
DistributedDataParallel.

A step is built once per run (`build_step`) with its precision and compilation settled, then called with
device-resident batches; it returns detached loss parts that stay on the device (no host sync).
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, DataError
from genlab.models.contract import GAN, Classifier, WithAuxiliary
from genlab.nn import module_device
from genlab.options import PRECISIONS
from genlab.world import World, every_rank

Optimizers = dict[str, torch.optim.Optimizer]
Step = Callable[[Tensor, Tensor | None], dict[str, Tensor]]


def make_optimizers(model: nn.Module, lr: float, beta1: float = 0.9, weight_decay: float = 0.0,
                    clip_grad: float = 0.0) -> Optimizers:
    """Adam for the model, one Adam per player of a GAN, or the model's Adam beside its auxiliary network's own
    (with the settings the model gives); fused: one kernel updates every parameter. With `weight_decay` > 0 each
    is AdamW (decoupled decay); with `clip_grad` > 0 each clips its gradient norm to it before every step."""
    def adam(params, **settings) -> torch.optim.Optimizer:
        # fused Adam: ~1.4x faster epochs than the per-tensor loop on 2 CPU cores
        kind = torch.optim.AdamW if weight_decay > 0 else torch.optim.Adam
        decay = {"weight_decay": weight_decay} if weight_decay > 0 else {}
        optimizer = kind(params, **{"lr": lr, "betas": (beta1, 0.999), **decay, **settings}, fused=True)
        if clip_grad > 0:
            clip_before_step(optimizer, clip_grad)
        return optimizer
    if isinstance(model, GAN):
        return {"discriminator": adam(model.discriminator.parameters()),
                "generator": adam(model.generator.parameters())}
    if isinstance(model, WithAuxiliary):
        network, settings = model.auxiliary()
        own = {id(p) for p in network.parameters()}
        return {"model": adam([p for p in model.parameters() if id(p) not in own]),
                "auxiliary": adam(list(network.parameters()), **settings)}
    return {"model": adam(model.parameters())}


def clip_before_step(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Scale the optimizer's gradients, before each of its steps, so that their joint 2-norm is at most max_norm.
    Every step shape (GAN players, auxiliary networks, DDP) clips alike; no host sync (the norm stays a tensor)."""
    weights = [p for group in optimizer.param_groups for p in group["params"]]

    def clip(*_: object) -> None:  # a pre-hook returns None, or it would replace the step's arguments
        torch.nn.utils.clip_grad_norm_(weights, max_norm, foreach=True)
    optimizer.register_step_pre_hook(clip)


def model_loss(model: nn.Module, x: Tensor, y: Tensor | None) -> dict[str, Tensor]:
    """The model's loss parts on a batch: classifiers take the labels, every other model only the images."""
    return model.loss(x, y) if isinstance(model, Classifier) else model.loss(x)


def wants_attributes(model: nn.Module) -> bool:
    """Whether the model is a classifier of the data's binary attributes (models.contract.Classifier `targets`)."""
    return isinstance(model, Classifier) and getattr(model, "targets", "classes") == "attributes"


def training_targets(model: nn.Module, data: Dataset) -> tuple[Tensor, Tensor]:
    """The labels the labelled step feeds loss(x, y), train and test: class indices (N,) int64, or for an
    attribute classifier the attribute rows as float (N, A) 0/1 (gathered by batch index like the images)."""
    if not wants_attributes(model):
        return data.train_y, data.test_y
    check_attribute_targets(model, data)
    return data.train_attributes.float(), data.test_attributes.float()


def check_attribute_targets(model: nn.Module, data: Dataset) -> None:
    """An attribute classifier needs data with as many binary attributes as it has outputs."""
    if not data.attribute_names:
        raise DataError(f"{data.name} has no attributes for an attribute classifier to learn; train it on data that "
                        f"has them: faces, faces:N, celeba:PATH, or folder: data with an attributes.csv")
    wanted = getattr(getattr(model, "config", None), "n_attributes", len(data.attribute_names))
    if wanted != len(data.attribute_names):
        raise ConfigError(f"the model predicts {wanted} attributes but {data.name} has {len(data.attribute_names)} "
                          f"({', '.join(data.attribute_names)}); build it with n_attributes="
                          f"{len(data.attribute_names)} (genlab train sets it from the data)")


def autocast(device: torch.device, precision: str) -> Callable[[], AbstractContextManager]:
    """A context factory: bf16 autocast (matmuls and convs in bfloat16, reductions in float32), or nothing."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def optimize(parts: dict[str, Tensor], optimizer: torch.optim.Optimizer,
             inputs: list[Tensor] | None = None) -> dict[str, Tensor]:
    """Backward from parts["loss"] (into `inputs` only, when given), one optimizer step; the parts come back
    detached, in float32."""
    optimizer.zero_grad(set_to_none=True)
    parts["loss"].backward(inputs=inputs)
    optimizer.step()
    return {name: value.detach().float() for name, value in parts.items()}


def make_step(model: nn.Module, optimizers: Optimizers, precision: str = "fp32", compile: bool = False,
              loss_options: dict[str, Tensor] | None = None) -> Step:
    """The step function for this model, decided once (a Protocol isinstance check costs ~20 us);
    `loss_options` are extra keyword arguments of model.loss (the KL weight under warm-up)."""
    device = module_device(model)
    precision_context = autocast(device, precision)
    if isinstance(model, GAN):
        if compile:  # in place: the state dict keeps its keys, so checkpoints are unchanged
            model.generator.compile()
            model.discriminator.compile()
        generator_weights = list(model.generator.parameters())
        return lambda x, y: gan_step(model, optimizers, x, precision_context, generator_weights)
    loss = torch.compile(model.loss) if compile else model.loss
    if loss_options:
        loss = functools.partial(loss, **loss_options)
    needs_labels = isinstance(model, Classifier)

    def step(x: Tensor, y: Tensor | None) -> dict[str, Tensor]:
        with precision_context():  # autocast covers the forward pass only; backward follows its dtypes
            parts = loss(x, y) if needs_labels else loss(x)
        return optimize_each(parts, optimizers)
    return step


def optimize_each(parts: dict[str, Tensor], optimizers: Optimizers) -> dict[str, Tensor]:
    """One backward from parts["loss"], then a step of every optimizer: the model's, and an auxiliary network's
    (models.contract.WithAuxiliary: the loss reaches its weights through the network's own term alone); the parts
    come back detached, in float32."""
    for optimizer in optimizers.values():
        optimizer.zero_grad(set_to_none=True)
    parts["loss"].backward()
    for optimizer in optimizers.values():
        optimizer.step()
    return {name: value.detach().float() for name, value in parts.items()}


def gan_step(model: nn.Module, optimizers: Optimizers, x: Tensor,
             precision_context: Callable[[], AbstractContextManager] = contextlib.nullcontext,
             generator_weights: list[Tensor] | None = None) -> dict[str, Tensor]:
    """The two-optimizer step: D on real (1) and fake (0), then G on fake labelled real; one G(z) serves both."""
    with precision_context():
        fake = model.generate(x.shape[0])
        d_parts = model.d_loss(x, fake)  # detaches fake: no gradient reaches G here
    d_parts = optimize(d_parts, optimizers["discriminator"])
    with precision_context():
        g_parts = model.g_loss(x.shape[0], fake)  # D already updated, as in Goodfellow et al.'s alternation
    # into G's weights only: D's weight gradients would be computed and thrown away
    g_parts = optimize(g_parts, optimizers["generator"], generator_weights or list(model.generator.parameters()))
    return model.loss_record(d_parts, g_parts)


def train_step(model: nn.Module, optimizers: Optimizers, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
    """One fp32 optimizer step on batch (x, y), for tests and notebooks; the trainer builds its step once."""
    return make_step(model, optimizers)(x, y)


# ---------------------------------------------------------------- the same steps under torchrun (DDP)


class LossCall(nn.Module):
    """Routes DDP's forward to the model's loss(): the gradient averaging hooks into forward()."""

    def __init__(self, model: nn.Module, options: dict[str, Tensor]) -> None:
        super().__init__()
        self.model, self.options = model, options

    def forward(self, *args: Tensor) -> dict[str, Tensor]:
        return self.model.loss(*args, **self.options)


def wrap(world: World, module: nn.Module) -> DistributedDataParallel:
    """DDP over `module`: rank 0's weights broadcast now, gradients averaged in buckets during backward."""
    on_gpu = next(module.parameters()).device.type == "cuda"
    return DistributedDataParallel(module, device_ids=[world.local_rank] if on_gpu else None)


def build_step(world: World, model: nn.Module, optimizers: Optimizers, precision: str = "fp32",
               compile: bool = False, sync_bn: bool = False, loss_options: dict[str, Tensor] | None = None) -> Step:
    """The step of `steps.make_step` for one process; with several, the same step under DDP. `loss_options` are
    extra keyword arguments of model.loss (the KL weight under warm-up)."""
    if not world.active:
        return make_step(model, optimizers, precision, compile, loss_options)
    if sync_bn:
        convert_sync_batch_norm(model)
    precision_context = autocast(next(model.parameters()).device, precision)
    if isinstance(model, GAN):
        return ddp_gan_step(world, model, optimizers, precision_context)
    ddp = wrap(world, LossCall(model, loss_options or {}))
    loss = torch.compile(ddp) if compile else ddp
    needs_labels = isinstance(model, Classifier)

    def step(x: Tensor, y: Tensor | None) -> dict[str, Tensor]:
        with precision_context():
            parts = loss(x, y) if needs_labels else loss(x)
        return optimize_each(parts, optimizers)  # DDP averages every gradient, the auxiliary network's too
    return step


def convert_sync_batch_norm(model: nn.Module) -> None:
    """Batch norm statistics over the global batch (a collective per layer per step; CUDA only)."""
    if next(model.parameters()).device.type != "cuda":
        raise every_rank(ConfigError("--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm has no CPU kernel); "
                                     "leave it out on CPU processes"))
    for name, child in model.named_children():
        setattr(model, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))


@contextlib.contextmanager
def routed(model: nn.Module, **wrappers: nn.Module) -> Iterator[None]:
    """Call the DDP wrappers in place of the model's players for one phase; the model's own modules (and so
    its state_dict keys) are back as soon as the phase ends."""
    saved = {name: model._modules[name] for name in wrappers}
    model._modules.update(wrappers)
    try:
        yield
    finally:
        model._modules.update(saved)


def ddp_gan_step(world: World, model: nn.Module, optimizers: Optimizers,
             precision_context: Callable[[], AbstractContextManager]) -> Step:
    """The GAN's two-optimizer step with each player under its own DDP: D's gradients are averaged in the
    D phase; G's reducer, armed by G(z), fires in the G phase, where D runs unwrapped (no D gradients)."""
    generator, discriminator = wrap(world, model.generator), wrap(world, model.discriminator)
    generator_weights = list(model.generator.parameters())

    def step(x: Tensor, y: Tensor | None) -> dict[str, Tensor]:
        with routed(model, generator=generator, discriminator=discriminator), precision_context():
            fake = model.generate(x.shape[0])
            d_parts = model.d_loss(x, fake)
        d_parts = optimize(d_parts, optimizers["discriminator"])
        with precision_context():
            g_parts = model.g_loss(x.shape[0], fake)
        g_parts = optimize(g_parts, optimizers["generator"], generator_weights)
        return model.loss_record(d_parts, g_parts)
    return step
