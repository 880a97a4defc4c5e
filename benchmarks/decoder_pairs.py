"""Which transposed-conv pairs pay to run as two ordinary convolutions? genlab's DeconvStack beside the plain layers.

    python benchmarks/decoder_pairs.py [--codes 1000] [--repeats 20]

For each conv decoder (conv-vae at 28 pixels; beta-vae-conv64 at 64x64 gray, conv-vae-64 at 64x64 RGB) it decodes
--codes random codes with gradients off, on the CPU, in NCHW and in NHWC, three ways: the plain reference (the
same weights in a plain Sequential of torch's own transposed convolutions), genlab's DeconvStack as it decides
(pairs whose convolutions do at most genlab.nn.MAX_PAIR_WORK times the layers' multiply-adds), and every pair
forced. Printed: each pair's work factor, the median milliseconds of each way, the ratios to the reference and the
largest difference from it (float rounding only).
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


def median_ms(decode, z: torch.Tensor, repeats: int) -> float:
    for _ in range(3):
        decode(z)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        decode(z)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


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
            base = median_ms(reference, z, args.repeats)
            line = f"  {'NHWC' if layout is torch.channels_last else 'NCHW'}  plain layers {base:7.2f} ms"
            for label, limit in (("genlab", gnn.MAX_PAIR_WORK), ("all pairs", float("inf"))):
                chosen, gnn.MAX_PAIR_WORK = gnn.MAX_PAIR_WORK, limit
                try:
                    stack.__dict__.pop("_pair_cache", None)  # decide again under this limit
                    difference = (model.decoder(z) - expected).abs().max().item()
                    ms = median_ms(model.decoder, z, args.repeats)
                finally:
                    gnn.MAX_PAIR_WORK = chosen
                    stack.__dict__.pop("_pair_cache", None)
                line += f"   {label} {ms:7.2f} ms ({base / ms:.2f}x, max diff {difference:.1e})"
            print(line, flush=True)


if __name__ == "__main__":
    main()
