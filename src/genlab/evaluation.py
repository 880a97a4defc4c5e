"""Evaluate a run: every metric of `genlab.metrics` that applies to its model, as one JSON-ready record, kept
beside the run. The Fréchet distance compares features of a classifier run (genlab.training.feature_classifier
trains and caches one per dataset).
"""
from __future__ import annotations

import datetime
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genlab import metrics
from genlab.data.dataset import Dataset
from genlab.disentanglement import MetricSizes, evaluate_disentanglement
from genlab.errors import ConfigError, RunError
from genlab.files import atomic_write_text, remove_leftovers_of
from genlab.latent import encode_means
from genlab.models.contract import VAE, AutoEncoder, Classifier, Generative, WithLikelihoodNetworks, contract_gap
from genlab.nn import module_device
from genlab.options import EvaluationOptions
from genlab.progress import progress_bar
from genlab.runs.layout import RunLayout
from genlab.runs.record import RunRecord
from genlab.runs.store import Run, load_run
from genlab.world import World, from_rank_zero, sharded


def log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the feature classifier


def load_classifier(folder: str | os.PathLike, data: Dataset, device: str | torch.device,
                    world: World = World()) -> nn.Module:
    """The classifier run in `folder`, checked to be a classifier of the data's images."""
    run = load_everywhere(world, folder, device)
    model = run.model
    if not isinstance(model, Classifier):
        raise RunError(f"--classifier {folder} holds a {run.record.model} run, not a classifier; "
                       f"train one with `genlab train classifier` or leave --classifier out")
    if tuple(model.config.image_shape) != tuple(data.image_shape):
        raise RunError(f"the classifier in {folder} takes {tuple(model.config.image_shape)} images but the run's "
                       f"data are {tuple(data.image_shape)}; train a classifier on the same data")
    return model


def needs_cached_classifier(run: Run, options: EvaluationOptions) -> bool:
    """Whether the evaluation measures Fréchet distances without a classifier of the user's (--classifier)."""
    return isinstance(run.model, Generative) and not options.skip_fid and not options.classifier


def load_everywhere(world: World, folder: str | os.PathLike, device: str | torch.device,
                    weights: str = "best") -> Run:
    """load_run on rank 0, handed to every rank (the others may run on machines without the run directory)."""
    if not world.active:
        return load_run(folder, device, weights)
    run = from_rank_zero(world, lambda: load_run(folder, "cpu", weights))
    run.model.to(device)
    return run


# ---------------------------------------------------------------- the parts


def likelihood_metrics(model: nn.Module, x: Tensor, options: EvaluationOptions, progress: bool,
                       world: World = World()) -> dict[str, Any]:
    """-ELBO and its parts on x, and the IWAE NLL on the first nll_images of x; nats and bits per dim."""
    dims = x[0].numel()
    parts = metrics.elbo_parts(model, x, progress=progress)
    result: dict[str, Any] = {"neg_elbo": {**parts, "bits_per_dim": metrics.bits_per_dim(parts["neg_elbo"], dims)}}
    subset = x[:options.nll_images] if options.nll_images else x
    nll = sharded(world, lambda part: metrics.iwae_nll(model, part, options.k, options.max_decodes, progress,
                                                       options.precision), subset).double()
    same = metrics.elbo_parts(model, subset)["neg_elbo"] if len(subset) < len(x) else parts["neg_elbo"]
    error = float(nll.std() / len(nll) ** 0.5) if len(nll) > 1 else float("nan")
    result["iwae_nll"] = {"nats": float(nll.mean()), "bits_per_dim": metrics.bits_per_dim(float(nll.mean()), dims),
                          "standard_error": error, "k": options.k, "images": len(subset),
                          "precision": options.precision,
                          "neg_elbo_same_images": same}
    return result


def probe_metrics(model: nn.Module, record: RunRecord, data: Dataset, options: EvaluationOptions,
                  test_x: Tensor, test_y: Tensor) -> dict[str, Any]:
    """Linear-probe test accuracy on frozen codes (posterior means) and on raw pixels of the same images."""
    n = options.probe_train  # sliced before anything is converted: a large set is never copied whole
    train_x, train_y = record.model_images(data.train_x[:n]), data.train_y[:n]
    codes = [encode_means(model, images).cpu() for images in (train_x, test_x)]
    return {"latent": metrics.linear_probe(codes[0], train_y, codes[1], test_y),
            "pixels": metrics.linear_probe(train_x.float(), train_y, test_x.float(), test_y),
            "train_images": len(train_x), "test_images": len(test_x), "latent_dim": int(codes[0].shape[1])}


def frechet_metrics(model: nn.Module, record: RunRecord, data: Dataset, options: EvaluationOptions,
                    test_x: Tensor, folder: Path, progress: bool, world: World = World()) -> dict[str, Any]:
    """Fréchet distances in the feature space of the classifier run in `folder`: samples vs test images, and
    train vs test as the floor.

    test_x: the test images as the model is tested on them (binarized for dynamic runs).
    """
    n_test = len(test_x)
    classifier = load_classifier(folder, data, module_device(model), world)
    samples = metrics.draw_samples(model, options.fid_samples, options.seed)  # every rank: the same samples

    def features(x: Tensor) -> Tensor:  # under torchrun each rank extracts a share; all ranks get them all
        return sharded(world, lambda part: metrics.features(classifier, part, progress=progress), x)
    n_floor = min(options.fid_samples, len(data.train_x))  # the floor at the samples' count: biased upward at small N
    test_f, sample_f, train_f = features(data.test_x[:n_test]), features(samples), features(data.train_x[:n_floor])
    result = {"samples_vs_test": metrics.frechet_distance(sample_f, test_f),
              "train_vs_test": metrics.frechet_distance(train_f, test_f), "samples": options.fid_samples,
              "floor_train_images": n_floor, "test_images": n_test, "classifier": str(folder)}
    result.update(kid_and_precision_recall(sample_f, train_f, test_f, options.seed))
    if record.train.binarize == "dynamic":
        binary_f = features(test_x)
        result["samples_vs_binarized_test"] = metrics.frechet_distance(sample_f, binary_f)
    result["inception"] = inception_metrics(samples, data.test_x[:n_test], module_device(model), progress, world)
    return result


PRECISION_RECALL_K = 3  # Kynkäänniemi et al. 2019's k


def kid_and_precision_recall(sample_f: Tensor, train_f: Tensor, test_f: Tensor, seed: int) -> dict[str, Any]:
    """KID and precision/recall beside the Fréchet distance, on the same classifier features: samples vs test
    images, and as the floor, train vs test images (as many training images as samples)."""
    sets = {"samples_vs_test": sample_f, "train_vs_test": train_f}
    kid = {name: metrics.kernel_distance(f, test_f, seed=seed) for name, f in sets.items()}
    if min(len(f) for f in (sample_f, train_f, test_f)) <= PRECISION_RECALL_K:
        return {"kid": kid, "precision_recall": {"note": f"precision/recall skipped: each set needs more than "
                                                         f"k = {PRECISION_RECALL_K} images"}}
    pr = {name: dict(zip(("precision", "recall"), metrics.precision_recall(test_f, f, PRECISION_RECALL_K)))
          for name, f in sets.items()}
    return {"kid": kid, "precision_recall": {**pr, "k": PRECISION_RECALL_K}}


def disentanglement_metrics(model: nn.Module, record: RunRecord, data: Dataset, options: EvaluationOptions,
                            progress: bool) -> dict[str, Any]:
    """The seven disentanglement metrics of the model's codes (posterior means) against the data's ground-truth
    factors, on options.disentanglement_points of the definitions' point counts."""
    if not isinstance(model, AutoEncoder):
        raise ConfigError(f"{record.model} has no encoder: the disentanglement metrics read the codes of images; "
                          f"leave --disentanglement out")
    source = data.require_factors()
    sizes = MetricSizes().scaled(options.disentanglement_points)

    def represent(images: Tensor) -> Any:  # uint8 (n, C, H, W) -> float64 (n, d) posterior means
        return encode_means(model, record.model_images(images)).double().cpu().numpy()
    bar = progress_bar(sizes.images(), "disentanglement: images encoded", "image", progress)
    with bar:
        return evaluate_disentanglement(represent, source, options.seed, bar, sizes)


def inception_metrics(samples: Tensor, test_x: Tensor, device: torch.device, progress: bool,
                      world: World = World()) -> dict[str, Any]:
    """Inception FID (pytorch-fid's network) when its package and weights are here, else the reason why not."""
    reason = metrics.inception_fid_unavailable()
    if reason is not None:
        return {"fid": None, "note": reason}
    def features(x: Tensor) -> Tensor:
        return sharded(world, lambda part: metrics.inception_features(part, device, progress=progress), x)
    fid = metrics.frechet_distance(features(samples), features(test_x))
    return {"fid": fid, "note": f"pytorch-fid InceptionV3 pool-3 features, {len(samples)} samples"}


# ---------------------------------------------------------------- the whole evaluation


def evaluate_run(run: Run, data: Dataset, options: EvaluationOptions = EvaluationOptions(), progress: bool = False,
                 world: World = World(), classifier: str | os.PathLike | None = None) -> dict[str, Any]:
    """Every metric that applies to the run's model, as a JSON-ready dict (nats per image, fractions).

    The Fréchet distances use the classifier run options.classifier names, else `classifier` (the cached one:
    genlab.training.feature_classifier.cached_classifier). Under torchrun (`world` of several ranks) the IWAE estimate
    and the classifier features are sharded over the ranks and gathered, so every rank returns the whole record.
    """
    model, record = run.model, run.record
    if not isinstance(model, (AutoEncoder, Generative)) and contract_gap(model, AutoEncoder, Generative):
        raise RunError(f"{record.model} cannot be evaluated: {contract_gap(model, AutoEncoder, Generative)}")
    if not isinstance(model, (AutoEncoder, Generative)):
        raise RunError(f"{record.model} is neither an autoencoder nor a generative model: there is nothing to "
                       f"evaluate beyond the test loss and accuracy already in {RunLayout(run.path).metrics}")
    folder = options.classifier or classifier
    if isinstance(model, Generative) and not options.skip_fid and folder is None:
        raise ConfigError("the Fréchet distance needs a feature classifier: give EvaluationOptions(classifier=RUN) "
                          "or classifier=genlab.training.feature_classifier.cached_classifier(...), or skip_fid=True")
    if options.precision != "fp32" and isinstance(model, VAE) and not isinstance(model, WithLikelihoodNetworks):
        raise ConfigError(f"--precision {options.precision}: {record.model} names no likelihood networks "
                          f"(likelihood_networks(), genlab.models.contract), so its NLL estimate runs only in fp32")
    model.eval()
    torch.manual_seed(world.seed(options.seed))  # rank 0 draws what one process draws
    x = run.test_images(data)[:options.test_images]
    y = data.test_y[:options.test_images]
    result = evaluation_header(run, data, options, len(x))
    result.update({"skipped": skipped} if (skipped := skipped_metrics(model, record.model, options)) else {})
    seconds = result["seconds"]
    if isinstance(model, VAE):
        with timed(seconds, "likelihood"):
            result.update(likelihood_metrics(model, x, options, progress, world))
    if isinstance(model, AutoEncoder):
        with timed(seconds, "reconstruction and probe"):
            result["reconstruction_mse"] = metrics.reconstruction_mse(model, x, progress=progress)
            result["probe"] = probe_metrics(model, record, data, options, x, y)
    if options.disentanglement:
        with timed(seconds, "disentanglement"):
            result["disentanglement"] = from_rank_zero(
                world, lambda: disentanglement_metrics(model, record, data, options, progress))
    if isinstance(model, Generative) and not options.skip_fid:
        with timed(seconds, "frechet"):
            result["frechet"] = frechet_metrics(model, record, data, options, x, Path(folder), progress, world)
    return result


SKIPPABLE = (("-ELBO and IWAE NLL", VAE), ("reconstruction MSE and linear probe", AutoEncoder),
             ("Fréchet distance", Generative))  # each metric group and the contract it needs


def skipped_metrics(model: nn.Module, name: str, options: EvaluationOptions) -> dict[str, str]:
    """The metrics left out because the model keeps only part of the contract they need: what, and why."""
    return {what: f"{name}: {gap}" for what, protocol in SKIPPABLE
            if not (protocol is Generative and options.skip_fid) and not isinstance(model, protocol)
            and (gap := contract_gap(model, protocol))}


def evaluation_header(run: Run, data: Dataset, options: EvaluationOptions, n_test: int) -> dict[str, Any]:
    binarized = run.record.train.binarize == "dynamic"
    levels = "RGB values" if data.test_x.shape[1] == 3 else "gray levels"
    return {"run": str(run.path), "model": run.record.model, "dataset": data.name,
            "created": datetime.datetime.now().isoformat(timespec="seconds"), "seed": options.seed,
            "test_images": n_test, "pixels": int(data.test_x[0].numel()), "binarized_test": binarized,
            "test_set": ("binarize_fixed(test_x): the fixed-seed binarization, as the run was trained with "
                         "--binarize dynamic") if binarized else f"test_x as stored ({levels} in [0, 1])",
            "seconds": {}}


@contextmanager
def timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Record the block's wall-clock seconds as seconds[name]."""
    start = time.perf_counter()
    yield
    seconds[name] = round(time.perf_counter() - start, 2)


def write_evaluation(run_dir: str | os.PathLike, result: dict[str, Any]) -> Path:
    """The evaluation kept beside the run, written atomically."""
    path = RunLayout(run_dir).evaluation
    remove_leftovers_of(path)  # what a killed evaluation left (its caller holds the run's writer lock)
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return path
