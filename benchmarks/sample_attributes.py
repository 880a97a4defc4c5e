"""Are a generative model's samples spread over the attributes like the data? An attribute classifier reads both.

    python benchmarks/sample_attributes.py RUN CLASSIFIER_RUN [--samples 1000] [--seed 0]

RUN: a DCGAN, VAE or any run with a prior to sample, trained on faces, faces:N or celeba:PATH; CLASSIFIER_RUN:
`genlab train attribute-classifier` on the same data. Printed per attribute: the share of --samples model samples
(prior codes from --seed) the classifier calls present, beside its share on as many test images and those images'
true share; and the share of predictions that are confident (probability above 0.9 or below 0.1), which is high on
images that look like the data and drops on images the classifier cannot read. The last line gives the mean, over
the attributes, of the absolute difference between the samples' and the test images' shares.
"""
from __future__ import annotations

import argparse
import time

from genlab.editing import sample_reading
from genlab.runs.store import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", metavar="RUN")
    parser.add_argument("classifier", metavar="CLASSIFIER_RUN")
    parser.add_argument("--samples", type=int, default=1000, help="model samples and test images (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prior codes (default 0)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    model_run, classifier_run = load_run(args.model), load_run(args.classifier)
    samples, data, truth, names = sample_reading(model_run, classifier_run, args.samples, args.seed, args.data_dir)
    print(f"{model_run.record.model} {args.model} on {model_run.record.data.spec}: {samples.n} samples (seed "
          f"{args.seed}) beside {data.n} test images; classifier {args.classifier}")
    print(f"{'attribute':<14} {'samples':>8} {'test (clf)':>11} {'test (true)':>12} {'confident: samples':>19} "
          f"{'test':>6}")
    for a, name in enumerate(names):
        print(f"{name:<14} {100 * samples.present[a]:>7.1f}% {100 * data.present[a]:>10.1f}% "
              f"{100 * truth[a]:>11.1f}% {100 * samples.confident[a]:>18.1f}% {100 * data.confident[a]:>5.1f}%")
    gap = (samples.present - data.present).abs().mean()
    print(f"{'mean':<14} {'':>8} {'':>11} {'':>12} {100 * samples.confident.mean():>18.1f}% "
          f"{100 * data.confident.mean():>5.1f}%")
    print(f"mean |samples - test| over the attributes: {100 * float(gap):.1f} percentage points; "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
