"""Which transposed-conv pairs pay to run as two ordinary convolutions? genlab's DeconvStack beside the plain layers.

    python benchmarks/decoder_pairs.py [--codes 1000] [--repeats 20]

For each conv decoder (conv-vae at 28 pixels; beta-vae-conv64 at 64x64 gray, conv-vae-64 at 64x64 RGB) it decodes
--codes random codes with gradients off, on the CPU, in NCHW and in NHWC, three ways: the plain reference (the
same weights in a plain Sequential of torch's own transposed convolutions), genlab's DeconvStack as it decides
(pairs whose convolutions do at most genlab.nn.MAX_PAIR_WORK times the layers' multiply-adds), and every pair
forced; in NHWC also genlab with its decoder's last linear layer writing NCHW ("NCHW head"), which oneDNN
transposes before the first transposed convolution (genlab.nn.ConvDecoder writes NHWC). The plain layers, genlab
and the NCHW head take turns decode by decode; every pair forced is timed after them. Printed:
each pair's work factor, the median milliseconds of each way, the ratios to the reference and the largest
difference from it (float rounding only).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import genlab  # noqa: F401  (before torch: genlab's thread and heap settings, as the CLI has them)

# isort: split
import torch

from genlab import nn as gnn
from genlab.models.registry import create_model

sys.path.insert(0, str(Path(__file__).resolve().parent))  # reference_loops sits beside this script
from reference_loops import plain_layers  # noqa: E402

DECODERS = [("conv-vae", (1, 28, 28)), ("beta-vae-conv64", (1, 64, 64)), ("conv-vae-64", (3, 64, 64))]


def median_ms(decodes: dict, z: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median milliseconds of each decode, the decodes taking turns (a noisy machine slows all of them alike)."""
    for decode in decodes.values():
        for _ in range(3):
            decode(z)
    times: dict[str, list[float]] = {label: [] for label in decodes}
    for _ in range(repeats):
        for label, decode in decodes.items():
            start = time.perf_counter()
            decode(z)
            times[label].append(time.perf_counter() - start)
    return {label: 1000 * statistics.median(t) for label, t in times.items()}


def with_nchw_head(decoder: torch.nn.Module):
    """The decoder as genlab ran it before its last linear layer wrote NHWC: that layer writes NCHW."""
    def decode(z: torch.Tensor) -> torch.Tensor:
        decoder.writes_nhwc = lambda: False  # this instance only
        try:
            return decoder(z)
        finally:
            del decoder.writes_nhwc
    return decode


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"{args.codes} codes a decode, gradients off, torch threads {torch.get_num_threads()}, "
          f"pairs run up to {gnn.MAX_PAIR_WORK}x the layers' work")
    for name, shape in DECODERS:
        torch.manual_seed(0)
        model = create_model(name, image_shape=shape).eval()
        stack = next(m for m in model.modules() if isinstance(m, gnn.DeconvStack))
        work = [gnn.pair_work(stack[i], stack[i + 2], *gnn.pair_kernels(stack[i], stack[i + 2])[::2])
                for i in range(len(stack)) if stack.pairs_at(i)]
        print(f"\n{name} {shape}: pairs' work {', '.join(f'{w:.2f}x' for w in work) or 'no pairs'}")
        z = torch.randn(args.codes, model.latent_dim)
        for layout in (torch.contiguous_format, torch.channels_last):
            model.to(memory_format=layout)
            reference = plain_layers(model.decoder)
            expected = reference(z)
            decodes = {"plain layers": reference, "genlab": model.decoder}
            if layout is torch.channels_last:
                decodes["NCHW head"] = with_nchw_head(model.decoder)
            ms = median_ms(decodes, z, args.repeats)
            differences = {label: (decode(z) - expected).abs().max().item() for label, decode in decodes.items()}
            chosen, gnn.MAX_PAIR_WORK = gnn.MAX_PAIR_WORK, float("inf")
            try:
                stack.__dict__.pop("_pair_cache", None)  # decide again under this limit
                ms.update(median_ms({"all pairs": model.decoder}, z, args.repeats))
                differences["all pairs"] = (model.decoder(z) - expected).abs().max().item()
            finally:
                gnn.MAX_PAIR_WORK = chosen
                stack.__dict__.pop("_pair_cache", None)
            base = ms["plain layers"]
            line = f"  {'NHWC' if layout is torch.channels_last else 'NCHW'}  plain layers {base:7.2f} ms"
            for label in ("genlab", "all pairs", "NCHW head"):
                if label in ms:
                    line += (f"   {label} {ms[label]:7.2f} ms ({base / ms[label]:.2f}x, "
                             f"max diff {differences[label]:.1e})")
            print(line, flush=True)


if __name__ == "__main__":
    main()
