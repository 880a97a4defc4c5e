"""Does the smile vector make faces smile, and only smile? An attribute vector judged on `faces`.

    python benchmarks/smile_vector.py VAE_RUN CLASSIFIER_RUN [--strength 1.0] [--attribute Smiling] [--n N]

VAE_RUN: a VAE (or autoencoder) trained on faces or faces:N; CLASSIFIER_RUN: `genlab train attribute-classifier
--data faces`. The vector is the mean code (posterior mean) of up to 2,000 training faces with the attribute minus
that of up to 2,000 without it; it is added at one strength s to the codes of the test faces without the
attribute (all ~5,000 of the 10,000, or the first --n), which are decoded. Printed, for the vector and for a
random vector of the same norm (seeded), on the same faces:

  the classifier's own test accuracy per attribute, on its data's (sharp) test images;
  (a) the share the classifier calls the attribute: on the originals, on decode(z), on decode(z + s v);
  (b) the share whose other attributes (every one but the edited) are all predicted on decode(z + s v) as on
      decode(z), the same face decoded unedited (and, for reference, on decode(z) as on the original);
  (c) with faces.render: the mean pixel distance (mean |difference| over pixels and channels, [0, 1] units) to
      the same face redrawn with the attribute on (Smiling: mouth curvature c -> |c|, the same bend turned up),
      from decode(z + s v), from decode(z) and from the original, over the whole image and over the pixels the
      redrawing changes (the mouth); the edit should come closer than decode(z).
"""
from __future__ import annotations

import argparse
import time

from genlab.editing import EditScores, measure_attribute_vector, predict_attributes
from genlab.runs.store import load_run


def share(value: float) -> str:
    return f"{100 * value:.1f}%"


def distance(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def judged(scores: EditScores) -> list[str]:
    """(a) and (b): the classifier's shares for one vector."""
    return [share(scores.called_original), share(scores.called_reconstruction), share(scores.called_edited),
            share(scores.others_kept), share(scores.others_reconstructed)]


def distances(scores: EditScores) -> list[str]:
    """(c): distances to the ground truth, whole image and the changed region, from edit, decode(z), original."""
    return [distance(scores.distance_edited), distance(scores.distance_reconstruction),
            distance(scores.distance_original), distance(scores.region_edited),
            distance(scores.region_reconstruction), distance(scores.region_original)]


def classifier_accuracy(classifier_run, data_dir: str | None) -> str:
    """The judge's own test accuracy, attribute by attribute, on the sharp test images of its data."""
    data = classifier_run.dataset(data_dir)
    right = (predict_attributes(classifier_run, data.test_x) == data.test_attributes).float().mean(0)
    cells = ", ".join(f"{name} {share(a)}" for name, a in zip(data.attribute_names, right.tolist()))
    return f"classifier test accuracy: {cells}; mean {share(right.mean().item())}"


def table(head: list[str], named: list[tuple[str, list[str]]]) -> None:
    print(f"{'':<22}" + "".join(f"{h:>16}" for h in head))
    for name, cells in named:
        print(f"{name:<22}" + "".join(f"{cell:>16}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", metavar="VAE_RUN")
    parser.add_argument("classifier", metavar="CLASSIFIER_RUN")
    parser.add_argument("--strength", type=float, default=1.0, help="s in z + s v (default 1: the vector itself)")
    parser.add_argument("--attribute", default="Smiling", help="the attribute of the vector (default Smiling)")
    parser.add_argument("--n", type=int, default=None, help="test faces without the attribute (default all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random reference vector")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    model_run, classifier_run = load_run(args.model), load_run(args.classifier)
    m = measure_attribute_vector(model_run, classifier_run, args.attribute, args.strength, args.n, args.seed,
                                 args.data_dir)
    print(f"{model_run.record.model} {args.model} on {model_run.record.data.spec}; classifier {args.classifier} "
          f"({classifier_run.record.data.spec})")
    print(classifier_accuracy(classifier_run, args.data_dir))
    print(f"{m.attribute} vector: {m.train_groups[1]} training faces with it minus {m.train_groups[0]} without, "
          f"norm {m.vector_norm:.3f}; strength s = {m.strength:g}; {m.vector.n} test faces without {m.attribute}")
    vectors = ((f"{m.attribute} vector", m.vector), ("random, same norm", m.random))
    print(f"\n(a) share called {m.attribute}, (b) share with every other attribute kept")
    table(["original", "decode(z)", "decode(z+sv)", "kept: edit", "kept: decode(z)"],
          [(name, judged(scores)) for name, scores in vectors])
    print("kept: edit = every other attribute predicted on decode(z+sv) as on decode(z); kept: decode(z) = on "
          "decode(z) as on the original")
    print(f"\n(c) mean |difference| ([0, 1] units, over pixels and channels) to {m.truth or 'no ground truth'}")
    table(["edit", "decode(z)", "original", "region: edit", "region: dec(z)", "region: orig"],
          [(name, distances(scores)) for name, scores in vectors])
    print("region: over the pixels the ground-truth edit changes (where original and redrawn face differ)")
    print(f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
