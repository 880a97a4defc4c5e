"""An evaluation record (`genlab.evaluation.evaluate_run`) as rows of text: the CLI's table and the report's."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


def evaluation_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) rows of an evaluation record, in reading order: the CLI table and the report's."""
    rows = [("test set", f"{result['test_images']} images: {result['test_set']}")]
    for key, describe in ROW_WRITERS:
        if result.get(key) is not None:
            rows += describe(result[key])
    return rows


def elbo_rows(e: dict[str, Any]) -> list[tuple[str, str]]:
    text = f"{e['neg_elbo']:.2f} nats/image ({e['bits_per_dim']:.4f} bits/dim) = reconstruction {e['rec']:.2f}"
    return [("-ELBO", text + f" + KL {e['kl']:.2f}")]


def nll_rows(n: dict[str, Any]) -> list[tuple[str, str]]:
    text = (f"{n['nats']:.2f} ± {n['standard_error']:.2f} nats/image ({n['bits_per_dim']:.4f} bits/dim) on the "
            f"first {n['images']} test images (their -ELBO: {n['neg_elbo_same_images']:.2f})")
    return [(f"IWAE NLL, k={n['k']}", text)]


def mse_rows(mse: float) -> list[tuple[str, str]]:
    return [("reconstruction MSE", f"{mse:.5f} per pixel (pixels in [0, 1])")]


def probe_rows(p: dict[str, Any]) -> list[tuple[str, str]]:
    text = (f"{100 * p['latent']:.2f}% on the {p['latent_dim']}-d codes, {100 * p['pixels']:.2f}% on raw pixels "
            f"({p['train_images']} train / {p['test_images']} test images)")
    return [("linear probe accuracy", text)]


def frechet_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    text = f"{f['samples_vs_test']:.2f} ({f['samples']} samples vs {f['test_images']} test images"
    if "samples_vs_binarized_test" in f:
        text += f"; vs the binarized test images {f['samples_vs_binarized_test']:.2f}"
    text += f"); floor, train vs test images: {f['train_vs_test']:.2f}"
    if "floor_train_images" in f:  # records before the floor was measured at the samples' count lack it
        text += (f" ({f['floor_train_images']} train images, as many as samples: distances from different "
                 f"sample counts are not comparable, the estimate is biased upward at small N)")
    inception = f.get("inception", {})
    fid = inception.get("fid")
    return [("Fréchet distance, classifier features", text), *kid_rows(f), *precision_recall_rows(f),
            ("Inception FID", f"{fid:.2f}" if fid is not None else str(inception.get("note", "not computed")))]


def kid_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    if "kid" not in f:
        return []
    samples, floor = f["kid"]["samples_vs_test"], f["kid"]["train_vs_test"]
    text = (f"{samples['mean']:.4g} ± {samples['std']:.2g} (samples vs test); floor, train vs test images: "
            f"{floor['mean']:.4g} ± {floor['std']:.2g} (mean ± std over {samples['subsets']} subsets of "
            f"{samples['subset_size']}; unbiased, cubic polynomial kernel)")
    return [("KID, classifier features", text)]


def precision_recall_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    pr = f.get("precision_recall")
    if pr is None or "note" in pr:
        return [] if pr is None else [("precision / recall", pr["note"])]
    samples, floor = pr["samples_vs_test"], pr["train_vs_test"]
    text = (f"{samples['precision']:.3f} / {samples['recall']:.3f} (samples vs test); floor, train vs test "
            f"images: {floor['precision']:.3f} / {floor['recall']:.3f}")
    return [(f"precision / recall, k={pr['k']}", text)]


def disentanglement_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    from genlab.disentanglement import points_line  # scikit-learn loads with it: only for a record that has them

    dci = d["dci"]
    text = (f"beta-VAE {d['beta_vae']:.3f}, FactorVAE {d['factor_vae']:.3f}, MIG {d['mig']:.3f}, DCI "
            f"disentanglement {dci['disentanglement']:.3f} / completeness {dci['completeness']:.3f} / "
            f"informativeness {dci['informativeness']:.3f}, SAP {d['sap']:.3f}, modularity {d['modularity']:.3f}, "
            f"explicitness {d['explicitness']:.3f}")
    return [("disentanglement", text), ("disentanglement points", points_line(d["points"])[len("points: "):])]


def skipped_rows(skipped: dict[str, str]) -> list[tuple[str, str]]:
    return [(what, f"skipped: {why}") for what, why in skipped.items()]


ROW_WRITERS: tuple[tuple[str, Callable[[Any], list[tuple[str, str]]]], ...] = (
    ("neg_elbo", elbo_rows), ("iwae_nll", nll_rows), ("reconstruction_mse", mse_rows),
    ("frechet", frechet_rows), ("probe", probe_rows), ("disentanglement", disentanglement_rows),
    ("skipped", skipped_rows))


def format_table(rows: list[tuple[str, str]]) -> str:
    """Two aligned columns of plain text."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
