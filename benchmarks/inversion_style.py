"""Style transfer with the CLI's defaults, chelsea (content) in hubble_deep_field's style, on efficientnet-lite0
beside vgg-random (the reference): Gram (style) loss before and after, and the content loss beside the style
image's own, with the time each took.

    python benchmarks/inversion_style.py [--out docs/images/inversion]

Writes style-<network>.png: content, style (as its Grams were taken, at the content's size) and result side by
side, labelled as `genlab invert style` labels them.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from genlab.images import save_image
from genlab.invert.measured import read_photo, style_figure, stylise
from genlab.invert.networks import load_network

NETWORKS = ("efficientnet-lite0", "vgg-random")


def run(name: str, out: Path) -> None:
    network = load_network(name)
    photos = read_photo("chelsea", 3, 256), read_photo("hubble_deep_field", 3, 256)
    content, style = (photo.image for photo in photos)
    start = time.perf_counter()
    result = stylise(network, content, style, steps=200)
    seconds = time.perf_counter() - start
    first, last = result.result.history[0], result.result.history[-1]
    print(f"{name:<20} style {first['style']:>10.4g} -> {last['style']:<10.4g} ({100 * result.style_cut:.1f}% cut)  "
          f"content {last['content']:.4g} (style image's own {result.style_own_content:.4g})  {seconds:.0f} s")
    names = tuple(Path(photo.source).name for photo in photos)
    figure = style_figure(content, result, name, names, "200 adam steps")
    save_image(figure, out / f"style-{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images/inversion", help="folder for the labelled triptychs")
    out = Path(parser.parse_args().out)
    threads = torch.get_num_threads()
    print(f"200 Adam steps, 256 px, {threads} thread{'s' if threads != 1 else ''}")
    for name in NETWORKS:
        run(name, out)


if __name__ == "__main__":
    main()
