"""How fast does `genlab --help` answer? Median of 5 fresh interpreters, beside plain references.

    python benchmarks/cli_startup.py [--repeats 5]

Each line is one command started from scratch: `python -m genlab --help`, then two references timed in the
same run: an empty Python (the floor) and `import torch` (what the command would pay if it imported torch).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def seconds(argv: list[str], repeats: int) -> float:
    """Median wall time of `repeats` runs of argv, output discarded."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = [("python -c pass (floor)", [sys.executable, "-c", "pass"]),
            ("python -c 'import torch'", [sys.executable, "-c", "import torch"]),
            ("genlab --help", [sys.executable, "-m", "genlab", "--help"]),
            ("genlab convarith explain --help", [sys.executable, "-m", "genlab", "convarith", "explain", "--help"])]
    measured = {name: seconds(argv, args.repeats) for name, argv in rows}
    torch_s = measured["python -c 'import torch'"]
    print(f"{'command':<34} {'median s':>9} {'vs import torch':>16}")
    for name, value in measured.items():
        print(f"{name:<34} {value:9.3f} {value / torch_s:15.2f}x")


if __name__ == "__main__":
    main()
