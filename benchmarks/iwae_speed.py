"""How fast is the k = 5000 IWAE estimate? genlab's metrics.iwae_nll beside a plain per-image loop.

    python benchmarks/iwae_speed.py RUN [--images 100] [--k 5000] [--max-decodes 4096 32768] [--precision fp32 bf16]

RUN is a trained VAE-family run directory: one latent (vae, conv-vae, vamp-vae, conv-vae-64 with its Gaussian
decoder, ...) or the two of hvae (z2 ~ q(z2|x), then z1 ~ q(z1|x, z2); VampPrior or standard prior on z2). The plain reference is the
loop most code bases write, on the model as plain PyTorch runs it (NCHW, plain Sequentials, torch's own transposed
convolutions): one image at a time, the image repeated for a chunk of 1000 samples,
F.binary_cross_entropy_with_logits (or torch.distributions.Normal) for log p(x|z), a logsumexp over the k log weights. Both run on the fixed
binarization of the first --images test images, on the CPU, with the threads torch is given. Printed: wall
seconds, user and system CPU seconds, the mean NLL (the two must agree within their Monte-Carlo error) and
the ratio of wall times. genlab runs once per --precision and --max-decodes pair (codes decoded per pass; "auto" is
genlab's default, which sizes the passes by the model's largest layer output). With bf16 the last line gives the
largest and the mean difference per image from the first fp32 estimate, recomputed in bf16 on the same draws (the
fp32 run's pass sizes).
"""
from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

# genlab before torch: both loops run with genlab's thread wait policy and heap settings, as `genlab evaluate` does
import genlab  # noqa: F401

# isort: split
import torch
import torch.nn.functional as F

from genlab import losses, metrics
from genlab.runs.store import load_run

sys.path.insert(0, str(Path(__file__).resolve().parent))  # reference_loops sits beside this script
from reference_loops import plain_layers  # noqa: E402

REFERENCE_CHUNK = 1000


def one_latent_log_weights(model: torch.nn.Module, image: torch.Tensor, mu, log_var, size: int) -> torch.Tensor:
    """log p(x|z) + log p(z) - log q(z|x) at `size` draws z ~ q(z|x) of one image."""
    z = mu + torch.exp(0.5 * log_var) * torch.randn(size, mu.shape[1])
    decoded = model.decode(z)
    if getattr(model.config, "likelihood", "bernoulli") == "gaussian":  # decoded are the means
        std = torch.as_tensor(model.decoder_log_variance()).mul(0.5).exp()
        log_px = torch.distributions.Normal(decoded, std).log_prob(image.expand_as(decoded)).flatten(1).sum(1)
    else:
        log_px = -F.binary_cross_entropy_with_logits(decoded, image.expand_as(decoded),
                                                     reduction="none").flatten(1).sum(1)
    return log_px + model.log_prior(z) - losses.log_normal_diag(z, mu, log_var)


def two_latent_log_weights(model: torch.nn.Module, image: torch.Tensor, mu2, log_var2, size: int) -> torch.Tensor:
    """The HVAE's: log p(x|z1, z2) + log p(z1|z2) + log p(z2) - log q(z1|x, z2) - log q(z2|x) at `size` joint draws
    z2 ~ q(z2|x), z1 ~ q(z1|x, z2) of one image."""
    z2 = mu2 + torch.exp(0.5 * log_var2) * torch.randn(size, mu2.shape[1])
    hidden = torch.cat([model.q_z1_x(image[None]).expand(size, -1), model.q_z1_z2(z2)], dim=-1)
    mu1, log_var1 = model.q_z1(hidden)
    z1 = mu1 + torch.exp(0.5 * log_var1) * torch.randn_like(mu1)
    prior_mu1, prior_log_var1 = model.p_z1(z2)
    logits = model.logits(z1, z2)
    log_px = -F.binary_cross_entropy_with_logits(logits, image.expand_as(logits), reduction="none").flatten(1).sum(1)
    log_p = losses.log_normal_diag(z1, prior_mu1, prior_log_var1) + model.log_prior(z2)
    log_q = losses.log_normal_diag(z1, mu1, log_var1) + losses.log_normal_diag(z2, mu2, log_var2)
    return log_px + log_p - log_q


@torch.no_grad()
def reference_nll(model: torch.nn.Module, x: torch.Tensor, k: int) -> torch.Tensor:
    """-log p(x) per image, one image at a time: (N,) nats."""
    log_weights = two_latent_log_weights if hasattr(model, "posterior_z1") else one_latent_log_weights
    out = []
    for image in x.float().div(255):
        mu, log_var = model.posterior(image[None])
        log_w = [log_weights(model, image, mu, log_var, min(REFERENCE_CHUNK, k - start))
                 for start in range(0, k, REFERENCE_CHUNK)]
        out.append(math.log(k) - torch.logsumexp(torch.cat(log_w), 0))
    return torch.stack(out)


def timed(name: str, estimate) -> tuple[float, torch.Tensor]:
    torch.manual_seed(0)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    nll = estimate().double()
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    print(f"{name:<34} {wall:8.2f} s wall  {after.ru_utime - before.ru_utime:8.2f} s user  "
          f"{after.ru_stime - before.ru_stime:7.2f} s system   NLL {nll.mean():.3f} "
          f"+- {nll.std() / math.sqrt(len(nll)):.3f}", flush=True)
    return wall, nll


def decodes(value: str) -> int | None:
    return None if value == "auto" else int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", metavar="RUN")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--max-decodes", type=decodes, nargs="+", default=[None, 2 ** 15],
                        help="codes per pass, each timed; auto: genlab's default")
    parser.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=["fp32"])
    args = parser.parse_args()
    run = load_run(args.run, "cpu")
    x = run.test_images(run.dataset())[:args.images]
    print(f"{run.record.model} ({run.weights} weights): {len(x)} test images, k = {args.k}, "
          f"torch threads {torch.get_num_threads()}; auto passes decode "
          f"{metrics.decodes_per_pass(run.model, x[:1])} codes")
    plain = plain_layers(run.model).to(memory_format=torch.contiguous_format)  # NCHW, as plain code runs
    reference, _ = timed("plain per-image loop", lambda: reference_nll(plain, x, args.k))
    first_fp32 = None
    for precision in args.precision:
        for max_decodes in args.max_decodes:
            wall, nll = timed(f"genlab {precision}, --max-decodes {max_decodes or 'auto'}",
                              lambda: metrics.iwae_nll(run.model, x, args.k, max_decodes, precision=precision))
            print(f"{'':<34} {reference / wall:.2f}x the reference's speed; all 10,000 test images: "
                  f"{wall * 10_000 / args.images / 60:.1f} min ({wall * 10_000 / args.images:.0f} s)")
            if precision == "fp32" and first_fp32 is None:
                first_fp32 = (max_decodes or metrics.decodes_per_pass(run.model, x[:1]), nll)
            elif precision == "bf16" and first_fp32 is not None and max_decodes == args.max_decodes[0]:
                torch.manual_seed(0)  # the fp32 run's draws: the same passes, so only the rounding differs
                gap = metrics.iwae_nll(run.model, x, args.k, first_fp32[0], precision="bf16").double() - first_fp32[1]
                print(f"{'':<34} bf16 - fp32 per image, on the same draws: mean {gap.mean():+.4f}, "
                      f"largest {gap.abs().max():.4f} nats")


if __name__ == "__main__":
    main()
