"""How fast do `genlab --help` and each command's --help answer? Median of 5 fresh interpreters, beside plain
references.

    python benchmarks/cli_startup.py [--repeats 5]

Each line is one command started from scratch: `python -m genlab --help` and `python -m genlab CMD --help` for
every command, beside two references timed in the same run: an empty Python (the floor) and `import torch` (what
a command would pay if it imported torch before parsing).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMAND_HELPS = [["train"], ["sample"], ["reconstruct"], ["report"], ["models"], ["data", "list"],
                 ["convarith", "explain"], ["invert", "class"], ["invert", "dream"], ["invert", "style"],
                 ["explore", "traverse"], ["evaluate"], ["serve"]]


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
            ("genlab --help", [sys.executable, "-m", "genlab", "--help"])]
    rows += [(f"genlab {' '.join(words)} --help", [sys.executable, "-m", "genlab", *words, "--help"])
             for words in COMMAND_HELPS]
    measured = {name: seconds(argv, args.repeats) for name, argv in rows}
    torch_s = measured["python -c 'import torch'"]
    print(f"{'command':<34} {'median s':>9} {'vs import torch':>16}")
    for name, value in measured.items():
        print(f"{name:<34} {value:9.3f} {value / torch_s:15.2f}x")
    slowest = max((value, name) for name, value in measured.items() if name.startswith("genlab"))
    print(f"slowest genlab help: {slowest[1]} at {slowest[0]:.3f} s")


if __name__ == "__main__":
    main()
