"""Honest evaluation of trained models: test ELBO and its parts, importance-weighted log-likelihood,
reconstruction error, Fréchet distance between feature sets, and linear probes.

Images enter as uint8 (N, C, H, W) (converted per batch) or as floats already in the model's input units.
Likelihoods are in nats per image; `bits_per_dim` converts them.
"""
from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab import losses
from genlab.data.batches import iter_ordered
from genlab.errors import ConfigError
from genlab.models.contract import WithLikelihoodNetworks
from genlab.nn import has_convolutions, is_nhwc, module_device
from genlab.options import MAX_DECODES
from genlab.progress import track

FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's port of the TF FID Inception weights


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    """Nats per image -> bits per pixel-channel: divide by dims * ln 2."""
    return nats_per_image / (dims * math.log(2))


def unit_batches(x: Tensor, batch_size: int, device: torch.device, progress: bool = False,
                 desc: str = "") -> Iterator[Tensor]:
    """iter_ordered's batches on `device` (uint8 converted to float [0, 1]), their progress on stderr if asked
    (genlab.progress: a bar on a terminal, else a line every ~10 s)."""
    return track(iter_ordered(x, batch_size, device), math.ceil(x.shape[0] / batch_size), desc, "batch", progress)


# ---------------------------------------------------------------- likelihoods


@torch.no_grad()
def elbo_parts(model: nn.Module, x: Tensor, batch_size: int = 1000, progress: bool = False) -> dict[str, float]:
    """Test -ELBO (beta = 1, one posterior sample per image) and its parts, nats per image (means).

    rec = -E_q log p(x|z), kl = KL(q(z|x) || p(z)) (closed form where the model has one), neg_elbo = rec + kl.
    """
    totals = torch.zeros(3, dtype=torch.float64)
    for batch in unit_batches(x, batch_size, module_device(model), progress, "ELBO"):
        rec, kl = elbo_terms(model, batch)
        totals += torch.stack([(rec + kl).sum(), rec.sum(), kl.sum()]).double().cpu()
    neg_elbo, rec, kl = (totals / x.shape[0]).tolist()
    return {"neg_elbo": neg_elbo, "rec": rec, "kl": kl}


def elbo_terms(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """(rec, kl), each (N,) nats: the model's own split, or for a VAE without one its N(0, I) closed form."""
    if hasattr(model, "elbo_terms"):
        return model.elbo_terms(x)
    mu, log_var = model.posterior(x)
    kl = losses.kl_std_normal(mu, log_var)
    return -model.elbo(x) - kl, kl  # the posterior is deterministic in eval mode: same mu, log_var as above


def importance_log_likelihood(model: nn.Module, x: Tensor, k: int, chunk: int) -> Tensor:
    """log (1/k) sum_i p(x, z_i) / q(z_i|x) over k samples drawn `chunk` at a time: (N,) nats.

    log_likelihood(x, c) + log c is the log of one chunk's summed weights; logaddexp pools the chunks.
    """
    total = None
    for start in range(0, k, chunk):
        size = min(chunk, k - start)
        log_sum = model.log_likelihood(x, size) + math.log(size)
        total = log_sum if total is None else torch.logaddexp(total, log_sum)
    return total - math.log(k)


def estimate_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point weight, float32 at least (the default without weights)."""
    weights = (w for w in (*model.parameters(), *model.buffers()) if w.is_floating_point())
    return torch.promote_types(next(weights, torch.empty(0)).dtype, torch.float32)


@torch.no_grad()
def iwae_nll(model: nn.Module, x: Tensor, k: int = 1000, max_decodes: int | None = None,
             progress: bool = False, precision: str = "fp32") -> Tensor:
    """-log p(x) estimated with k importance samples per image (Burda et al. 2016): (N,) nats, on the CPU.

    Images and samples are both batched so that one pass decodes at most max_decodes codes: k = 5000
    costs time, not memory. The estimate is a stochastic upper bound on -log p(x) that tightens with k.
    The passes are small and of one size because that is faster on the CPU: glibc serves allocations above
    32 MB with fresh pages the kernel must zero, and a heap that sees alternating sizes (4096 then 904 samples)
    keeps returning and refaulting memory; 2 x 2500 samples of 28x28 logits (8 MB) are reused from the heap.
    At 32768 codes per pass a third of the time went to the kernel (benchmarks/iwae_speed.py).
    max_decodes None sizes the passes by the model (`decodes_per_pass`): a conv decoder's wide layers fill the
    caches with fewer codes than an MLP's. Conv models run their passes in NHWC on the CPU (`nhwc_on_cpu`).
    precision "bf16" runs the model's `likelihood_networks` in bfloat16 (`likelihood_in_bf16`).
    The estimates go into one tensor of the model's dtype (float32 at least), made up front: a small result tensor
    kept per pass lands between the passes' freed buffers and pins the heap apart, so that resident memory grew by
    2.3 MB per image.
    """
    if k < 1:
        raise ConfigError(f"k (importance samples per image) must be >= 1, got {k}; 1 gives the ELBO")
    nll = torch.empty(x.shape[0], dtype=estimate_dtype(model))  # a float64 model's estimate stays float64
    if not len(x):  # a torchrun rank's share of fewer images than ranks
        return nll
    with nhwc_on_cpu(model):
        if max_decodes is None:
            max_decodes = decodes_per_pass(model, x[:1], precision)
        images = max(1, max_decodes // k)
        chunk = math.ceil(k / math.ceil(k / max(1, max_decodes // images)))  # equal chunks: all passes one size
        with likelihood_in_bf16(model, precision == "bf16"):
            nll = estimate_in_passes(model, x, k, images, chunk, nll, progress)
    return nll


def estimate_in_passes(model: nn.Module, x: Tensor, k: int, images: int, chunk: int, nll: Tensor,
                       progress: bool) -> Tensor:
    """-log p(x) written into nll, `images` images and `chunk` samples a pass."""
    batches = unit_batches(x, images, module_device(model), progress, f"IWAE k={k}")
    for batch, start in zip(batches, range(0, x.shape[0], images)):  # batches first: the last one is counted
        nll[start:start + len(batch)] = -importance_log_likelihood(model, batch, k, chunk)
    return nll


PASS_BYTES = MAX_DECODES * 784 * 4  # the largest activation of one pass: 4096 codes of 28x28 float32 logits, 12.8 MB


@torch.no_grad()
def decodes_per_pass(model: nn.Module, image: Tensor, precision: str = "fp32") -> int:
    """Codes one pass of the IWAE estimate decodes: as many as keep the pass's largest activation (an output of the
    likelihood networks, which run once per code, or of any module of a model that names none; or the image in
    float32) within PASS_BYTES. 4096 for a Fashion-MNIST MLP, whose largest are its logits;
    1024 for conv-vae, whose 16x14x14 layer is four times the image, and 2048 in bfloat16, half the bytes. Passes
    of 1024 codes ran conv-vae's k = 1000 estimate 1.4x as fast as passes of 4096 (benchmarks/iwae_speed.py)."""
    largest = [image[0].numel() * 4]

    def record(module: nn.Module, inputs, output) -> None:
        outputs = output if isinstance(output, tuple) else (output,)
        largest.extend(o[0].numel() * o.element_size() for o in outputs if isinstance(o, Tensor) and o.dim() > 0)
    device = module_device(model)
    per_code = model.likelihood_networks() if isinstance(model, WithLikelihoodNetworks) else [model]
    hooks = [m.register_forward_hook(record) for network in per_code for m in network.modules()]
    # the estimate's own draws are untouched: the same seed gives the same estimate as with a fixed size. Gradients
    # on, every layer runs as itself and is seen (a DeconvStack pair's outputs are as large as its layers')
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.enable_grad():
            with likelihood_in_bf16(model, precision == "bf16"):
                model.log_likelihood(next(iter_ordered(image, 1, device)), 1)
    finally:
        for hook in hooks:
            hook.remove()
    return max(1, PASS_BYTES // max(largest))


@contextmanager
def likelihood_in_bf16(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """While the block runs, the model's likelihood networks (contract.WithLikelihoodNetworks) compute under
    bfloat16 autocast and hand their outputs on in float32. On conv-vae's k = 1000 estimate the NLL moved by 0.0003
    nats on average (at most 0.09 for one image) while the estimate took 0.6 of the time (benchmarks/iwae_speed.py)."""
    if not enabled:
        yield
        return
    if not isinstance(model, WithLikelihoodNetworks):
        raise ConfigError(f"{type(model).__name__} names no likelihood networks (likelihood_networks(), "
                          f"genlab.models.contract): its NLL estimate runs only in fp32; leave --precision out")
    networks = model.likelihood_networks()
    device = module_device(model).type
    for network in networks:
        def forward(*args, _forward=network.forward, **kwargs) -> Tensor:
            with torch.autocast(device, dtype=torch.bfloat16):
                out = _forward(*args, **kwargs)
            return out.to(torch.promote_types(out.dtype, torch.float32))
        network.forward = forward  # the instance's attribute, removed below: the class is untouched
    try:
        yield
    finally:
        for network in networks:
            del network.forward


@contextmanager
def nhwc_on_cpu(model: nn.Module) -> Iterator[None]:
    """The model's convolutions run in NHWC while the block runs, on the CPU; its weights' layout is restored after.
    The IWAE passes decode a thousand codes at once, where oneDNN's NHWC kernels are faster even for 28-pixel
    images (conv-vae's decoder on 1000 codes: 14.8 against 18.2 ms, 2 threads; benchmarks/decoder_pairs.py)."""
    if not has_convolutions(model) or module_device(model).type != "cpu":
        yield
        return
    weights = [w for w in model.parameters() if w.dim() == 4]  # what model.to(memory_format=...) converts
    before = [is_nhwc(w) for w in weights]
    model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for weight, was_nhwc in zip(weights, before):
            if not was_nhwc:
                weight.data = weight.data.contiguous()


@torch.no_grad()
def reconstruction_mse(model: nn.Module, x: Tensor, batch_size: int = 1000, progress: bool = False) -> float:
    """Mean squared error between images and their reconstructions, per pixel, in [0, 1] units squared."""
    total = torch.zeros((), dtype=torch.float64)
    for batch in unit_batches(x, batch_size, module_device(model), progress, "reconstruction"):
        total += (model.reconstruct(batch) - batch).square().sum().double().cpu()
    return float(total) / x[0].numel() / x.shape[0]


# ---------------------------------------------------------------- Fréchet distance


@torch.no_grad()
def features(classifier: nn.Module, x: Tensor, batch_size: int = 1000, progress: bool = False) -> Tensor:
    """A classifier's penultimate features of images: (N, feature_dim) on the CPU."""
    batches = unit_batches(x, batch_size, module_device(classifier), progress, "features")
    return torch.cat([classifier.features(batch).cpu() for batch in batches])


@torch.no_grad()
def draw_samples(model: nn.Module, n: int, seed: int = 0, batch_size: int = 500) -> Tensor:
    """n model samples in [0, 1], (n, C, H, W) on the CPU, the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([model.sample(min(batch_size, n - start), generator=generator).cpu()
                      for start in range(0, n, batch_size)])


def mean_and_covariance(feats: Tensor) -> tuple[Tensor, Tensor]:
    """(N, D) -> mean (D,) and unbiased covariance (D, D), float64."""
    if feats.shape[0] < 2:
        raise ConfigError(f"a covariance needs at least 2 feature vectors, got {feats.shape[0]}")
    feats = feats.double()
    return feats.mean(0), torch.cov(feats.T).reshape(feats.shape[1], feats.shape[1])


def psd_sqrt(matrix: Tensor) -> Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative round-off clipped to 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, D) and b (M, D), squared feature units.

    d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) (Dowson & Landau 1982; FID of Heusel et al. 2017).
    """
    mu_a, cov_a = mean_and_covariance(a)
    mu_b, cov_b = mean_and_covariance(b)
    root_a = psd_sqrt(cov_a)
    # tr (S_a S_b)^(1/2) = tr (S_a^(1/2) S_b S_a^(1/2))^(1/2): the latter is symmetric, so eigvalsh applies
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def inception_fid_unavailable() -> str | None:
    """Why Inception FID cannot be computed here (a missing package or weights file), or None if it can."""
    for package, pip_name in (("pytorch_fid", "pytorch-fid"), ("torchvision", "torchvision"), ("scipy", "scipy")):
        if importlib.util.find_spec(package) is None:
            return (f"Inception FID skipped: the {pip_name} package is not installed (pip install pytorch-fid, "
                    f"then put {FID_WEIGHTS} in {inception_weights_path().parent})")
    if not inception_weights_path().is_file():
        return f"Inception FID skipped: the weights file {inception_weights_path()} is missing (no download here)"
    return None


def inception_weights_path() -> Path:
    """Where torch.hub (and so pytorch-fid) looks for the FID Inception weights before downloading."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS


@torch.no_grad()
def inception_features(x: Tensor, device: torch.device, batch_size: int = 200, progress: bool = False) -> Tensor:
    """Pool-3 features (N, 2048) of pytorch-fid's InceptionV3; gray images repeated to RGB, resized to 299."""
    from pytorch_fid.inception import (
        InceptionV3,  # optional dependency, checked by inception_fid_unavailable
    )

    network = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
    out = []
    for batch in unit_batches(x, batch_size, device, progress, "Inception"):
        batch = batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch
        out.append(network(batch)[0].flatten(1).cpu())
    return torch.cat(out)


# ---------------------------------------------------------------- linear probe


def standardise(train: Tensor, test: Tensor) -> tuple[Tensor, Tensor]:
    """Centre and scale both sets by the training set's per-feature mean and std (constant features: std 1)."""
    mean, std = train.mean(0), train.std(0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return (train - mean) / std, (test - mean) / std


def linear_probe(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, weight_decay: float = 1e-4,
                 steps: int = 200) -> float:
    """Test accuracy (fraction) of multinomial logistic regression on frozen features (N, D).

    Features are standardised; the probe minimises mean cross-entropy + weight_decay * |W|^2 by
    full-batch L-BFGS (a convex problem: no learning rate to tune, no epochs).
    """
    train_x, test_x = (f.float() for f in standardise(train_x.double().flatten(1), test_x.double().flatten(1)))
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    probe = nn.Linear(train_x.shape[1], n_classes)
    optimizer = torch.optim.LBFGS(probe.parameters(), lr=1, max_iter=steps, history_size=20,
                                  tolerance_grad=1e-6, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(probe(train_x), train_y) + weight_decay * probe.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return float((probe(test_x).argmax(1) == test_y).double().mean())


# ---------------------------------------------------------------- KID and precision/recall, on the same features


def kernel_distance(a: Tensor, b: Tensor, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> dict[str, float | int]:
    """KID (Binkowski et al. 2018) between feature sets a (N, D) and b (M, D): the unbiased MMD^2 with the kernel
    k(x, y) = (x.y / D + 1)^3, averaged over `subsets` random subsets of `subset_size` of each set drawn without
    replacement (torch-fidelity's defaults), the size capped by min(N, M). Kernel units (unitless for unit-scale
    features); "mean" and "std" are over the subsets, with the subset size actually used.
    """
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ConfigError(f"KID needs at least 2 feature vectors in each set, got {len(a)} and {len(b)}")
    generator = torch.Generator().manual_seed(seed)
    values = torch.tensor([polynomial_mmd(a[torch.randperm(len(a), generator=generator)[:size]],
                                          b[torch.randperm(len(b), generator=generator)[:size]])
                           for _ in range(subsets)], dtype=torch.float64)
    std = float(values.std()) if subsets > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "subsets": subsets, "subset_size": size}


def polynomial_mmd(x: Tensor, y: Tensor) -> float:
    """Unbiased MMD^2 of equal-size sets x, y (m, D) with k(x, y) = (x.y / D + 1)^3: the kernel means over the
    off-diagonal pairs of x and of y, less twice the mean over all (x, y) pairs."""
    x, y = x.double(), y.double()
    m, dims = x.shape

    def kernel(p: Tensor, q: Tensor) -> Tensor:
        return (p @ q.T / dims + 1) ** 3
    k_xx, k_yy = kernel(x, x), kernel(y, y)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * kernel(x, y).mean())


def chunked_rows(n_rows: int, n_cols: int, max_entries: int) -> int:
    """Rows per chunk so that a (rows, n_cols) distance block holds at most max_entries values (one row at least)."""
    return max(1, max_entries // max(1, n_cols))


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """|a_i - b_j|^2 for a (n, D), b (m, D): (n, m) float64, round-off below 0 clipped."""
    a, b = a.double(), b.double()
    return (a.square().sum(1, keepdim=True) + b.square().sum(1) - 2 * a @ b.T).clamp_min(0)


def knn_radii(feats: Tensor, k: int = 3, max_entries: int = 1 << 23) -> Tensor:
    """Squared distance from each of feats (N, D) to its k-th nearest other member: (N,) float64.

    Computed a block of rows at a time (at most max_entries distances, 64 MB, held at once), so 10,000 x 10,000
    never exists; each point's zero distance to itself is the first of the k + 1 smallest and is skipped.
    """
    if not 1 <= k < len(feats):
        raise ConfigError(f"the k-NN radius needs 1 <= k < number of feature vectors, got k={k} for {len(feats)}")
    rows = chunked_rows(len(feats), len(feats), max_entries)
    return torch.cat([squared_distances(feats[start:start + rows], feats).topk(k + 1, dim=1, largest=False)
                      .values[:, k] for start in range(0, len(feats), rows)])


def manifold_coverage(queries: Tensor, support: Tensor, radii: Tensor, max_entries: int = 1 << 23) -> float:
    """Fraction of queries (n, D) within the k-NN ball of at least one support point (m, D) whose squared radii
    (m,) are given: |q - s_j|^2 <= radii_j for some j. Blocks of rows as in knn_radii."""
    rows = chunked_rows(len(queries), len(support), max_entries)
    inside = sum(int((squared_distances(queries[start:start + rows], support) <= radii).any(1).sum())
                 for start in range(0, len(queries), rows))
    return inside / len(queries)


def precision_recall(real: Tensor, generated: Tensor, k: int = 3, max_entries: int = 1 << 23) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of feature sets real (N, D), generated (M, D):
    fractions in [0, 1].

    Each set's manifold is the union of balls around its members reaching their k-th nearest neighbour in the set.
    precision = share of generated samples inside the real manifold; recall = share of real ones inside the
    generated manifold. Both depend on the counts (fewer members, wider balls): compare them at equal counts.
    """
    precision = manifold_coverage(generated, real, knn_radii(real, k, max_entries), max_entries)
    recall = manifold_coverage(real, generated, knn_radii(generated, k, max_entries), max_entries)
    return precision, recall
