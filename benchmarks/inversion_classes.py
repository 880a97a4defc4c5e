"""Class visualization on EfficientNet-Lite0, two recipes, ten ImageNet classes: the target probability on Lite0
(the network the pictures were made with) and on Lite1 and Lite2 (transfer: do the pictures show the class, or
only fool the network that made them?). The seeds' recipe is the reference; the robust one is genlab's default.

    python benchmarks/inversion_classes.py [--steps-robust 128] [--steps-seeds 300] [--recipes robust seeds]

Writes classes-robust.png and classes-seeds.png (labelled grids) to --out and prints the table.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from genlab.images import captioned_grid, save_image
from genlab.invert.measured import ClassPictures, recipe_defaults, visualize_classes
from genlab.invert.networks import load_network
from genlab.options import RECIPES

CLASSES = (76, 74, 281, 967, 779, 963, 849, 1, 980, 954)  # two spiders, a cat, espresso, six other things
SOURCE, JUDGES = "efficientnet-lite0", ("efficientnet-lite1", "efficientnet-lite2")

SEEDS_MOVES = {"jitter": 8, "blur_every": 4, "blur_sigma": 0.5}  # the CLI's: jitter side / 28, blur every 4 steps


def make(recipe: str, steps: int, out: Path) -> tuple[ClassPictures, float]:
    source, judges = load_network(SOURCE), [load_network(name) for name in JUDGES]
    options = {**recipe_defaults(source, recipe), "steps": steps, **(SEEDS_MOVES if recipe == "seeds" else {})}
    start = time.perf_counter()
    pictures = visualize_classes(source, CLASSES, recipe=recipe, judges=judges, progress=True, **options)
    seconds = time.perf_counter() - start
    save_image(captioned_grid(pictures.images, pictures.captions(SOURCE), nrow=5), out / f"classes-{recipe}.png")
    return pictures, seconds


def table(results: dict[str, tuple[ClassPictures, float]]) -> None:
    names = ["lite0", "lite1", "lite2"]
    print(f"{'class':<18}" + "".join(f"{recipe + ' ' + n:>16}" for recipe in results for n in names))
    any_pictures = next(iter(results.values()))[0]
    for i, (c, name) in enumerate(zip(any_pictures.classes, any_pictures.names)):
        row = [float(p.probability[i]) if n == "lite0" else float(p.judged[f"efficientnet-{n}"][i])
               for p, _ in results.values() for n in names]
        print(f"{f'{c} {name}':<18}" + "".join(f"{v:>16.3f}" for v in row))
    for label, pick in (("median", statistics.median), ("minimum", min)):
        row = [pick(p.probability.tolist() if n == "lite0" else p.judged[f"efficientnet-{n}"].tolist())
               for p, _ in results.values() for n in names]
        print(f"{label:<18}" + "".join(f"{v:>16.3f}" for v in row))
    for recipe, (_, seconds) in results.items():
        print(f"{recipe}: {seconds:.0f} s for {len(CLASSES)} pictures on {torch.get_num_threads()} threads")
    if len(results) < 2:
        return
    (robust, _), (seeds, _) = results["robust"], results["seeds"]
    r, s = (statistics.median(p.judged["efficientnet-lite2"].tolist()) for p in (robust, seeds))
    print(f"median transfer to lite2: robust {r:.3f}, seeds (reference) {s:.3f}, ratio {r / max(s, 1e-9):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-robust", type=int, default=128)
    parser.add_argument("--steps-seeds", type=int, default=300)
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=RECIPES)
    parser.add_argument("--out", default="docs/images/inversion", help="folder for the labelled grids")
    args = parser.parse_args()
    out = Path(args.out)
    steps = {"robust": args.steps_robust, "seeds": args.steps_seeds}
    results = {recipe: make(recipe, steps[recipe], out) for recipe in args.recipes}
    table(results)


if __name__ == "__main__":
    main()
