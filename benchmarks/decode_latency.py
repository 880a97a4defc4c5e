"""How live is the explorer? Decode round trips over HTTP beside the same decode in-process.

    python benchmarks/decode_latency.py RUN [--requests 200]

Starts `genlab serve`'s server for RUN on a free local port, then times POST /api/decode with random
codes (JSON in, PNG out, one request at a time, as a dragged slider sends them) and, as the plain
reference, the model's decode plus PNG encoding called directly in this process.
"""
from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import urllib.request

import torch

from genlab.runs.store import load_run
from genlab.serve.api import Explorer
from genlab.serve.server import make_server


def summary(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    return (f"{name:<28} median {statistics.median(ms):6.2f} ms   p95 {ms[int(0.95 * (len(ms) - 1))]:6.2f} ms   "
            f"max {ms[-1]:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", metavar="RUN")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    explorer = Explorer(load_run(args.run))
    codes = torch.randn(args.requests, explorer.latent_dim, generator=torch.Generator().manual_seed(0)).tolist()
    server = make_server(explorer, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/decode"
    direct, http = [], []
    for z in codes[:10]:  # warm-up of both paths
        explorer.decode(z)
        urllib.request.urlopen(urllib.request.Request(url, data=json.dumps({"z": z}).encode()), timeout=10).read()
    for z in codes:
        start = time.perf_counter()
        explorer.decode(z)
        direct.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        urllib.request.urlopen(urllib.request.Request(url, data=json.dumps({"z": z}).encode()), timeout=10).read()
        http.append((time.perf_counter() - start) * 1000)
    server.shutdown()
    print(f"{explorer.info()['model']} ({explorer.latent_dim}-d latent, {explorer.image_shape}), "
          f"{args.requests} requests, torch threads {torch.get_num_threads()}")
    print(summary("in-process decode + PNG", direct))
    print(summary("HTTP round trip", http))


if __name__ == "__main__":
    main()
