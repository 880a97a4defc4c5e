"""`genlab convarith explain` as text: the sizes, the matrix C as a table of kernel symbols w_{a,b}, and the
transposed convolution C^T as the stride-1 direct convolution that computes it."""
from __future__ import annotations

import torch

from genlab.convarith.arithmetic import (
    ConvArithError,
    TransposedRelationship,
    as_int,
    conv_matrix,
    conv_size_1d,
    layout,
    matching_output_padding,
    transposed_relationship,
)

MAX_EXPLAIN = 32  # explain lists every input: i x i of them


def explain(i: int, k: int, s: int = 1, p: int = 0, output_padding: int | None = None, d: int = 1) -> str:
    """Text for a terminal: the sizes, C as a table of w_{a,b} symbols, and C^T as a direct convolution."""
    i, k, s, p, d = (as_int(v, n) for v, n in zip((i, k, s, p, d), "ikspd", strict=True))
    o = conv_size_1d(i, k, s, p, d)
    if i > MAX_EXPLAIN:
        raise ConvArithError(f"explain is for small examples: i={i} would list {i * i} inputs; use i <= {MAX_EXPLAIN}")
    matching = matching_output_padding(i, k, s, p, d)
    a = matching if output_padding is None else as_int(output_padding, "a")
    rel = transposed_relationship(o, k, s, p, a, d)
    lines = conv_section(i, k, s, p, d, o) + [""] + transposed_section(rel, i, matching)
    return "\n".join(lines)


def conv_section(i: int, k: int, s: int, p: int, d: int, o: int) -> list[str]:
    """The explain lines for y = C x: the size formula and C as a table (or, when wide, as sums)."""
    symbols = symbol_matrix(i, k, s, p, d)
    lines = [f"Convolution: i = {i}, k = {k}, s = {s}, p = {p}, d = {d}",
             (f"  o = floor((i + 2p - d(k - 1) - 1) / s) + 1 = floor(({i} + {2 * p} - {d * (k - 1)} - 1) / {s}) + 1 "
              f"= {o}: a {i}x{i} input gives a {o}x{o} output"),
             "",
             (f"As a matrix: y = C x, with x the {i}x{i} input read row by row (x0..x{i * i - 1}) "
              f"and y the {o}x{o} output (y0..y{o * o - 1})."),
             (f"C is {o * o} x {i * i}; row r holds the kernel entries w_{{a,b}} at the inputs output r sees, "
              f"0 elsewhere:")]
    if i * i > 16:
        return [*lines, "(too wide for a table; each row as a sum)", *sums(symbols, "y", "x")]
    transposed = [list(column) for column in zip(*symbols, strict=True)]
    return [*lines, *table(symbols, "y", "x"), "",
            f"C^T is {i * i} x {o * o}; row j holds the kernel entries that touched input j:",
            *table(transposed, "x", "y")]


def transposed_section(rel: TransposedRelationship, i: int, matching: int) -> list[str]:
    """The explain lines for x' = C^T y and its equivalent direct convolution."""
    stretched, o = rel.s * (rel.i - 1) + 1, rel.output_size
    lines = [(f"Transposed convolution x' = C^T y: i' = {rel.i}, k = {rel.k}, s = {rel.s}, p = {rel.p}, "
              f"output padding a = {rel.output_padding}, d = {rel.d}"),
             f"  relationship: {rel.name}",
             f"  {rel.formula}"]
    if rel.output_padding != matching:
        lines.append(f"  note: C^T itself has a = {matching} and returns {i}x{i}; with a = {rel.output_padding} "
                     f"the output is {o}x{o}")
    zeros = f"{rel.zeros_between} zero{'' if rel.zeros_between == 1 else 's'}"  # s - 1
    extra = f" plus a = {rel.extra_padding} on the bottom/right" if rel.extra_padding else ""
    lines += [(f"As a direct convolution: insert s - 1 = {zeros} between inputs ({rel.i}x{rel.i} -> "
               f"{stretched}x{stretched}),"),
              (f"  pad p' = d(k - 1) - p = {rel.p_prime} on each side{extra} "
               f"(-> {rel.direct_input_size}x{rel.direct_input_size}),"),
              (f"  flip the kernel and swap its in/out channels, convolve with k' = {rel.k_prime}, s' = 1, "
               f"d' = {rel.d} -> {o}x{o}")]
    if rel.direct_input_size > 24:
        return lines
    grid = layout("transposed", rel.i, rel.k, rel.s, rel.p, rel.output_padding, rel.d)
    return [*lines, "  what it slides over (x input, 0 inserted zero, . padding):",
            *("    " + " ".join(row) for row in grid)]


def symbol_matrix(i: int, k: int, s: int, p: int, d: int) -> list[list[str]]:
    """C for one channel as symbols: entry (r, j) is 'w_{a,b}' when output r reads input j through tap (a, b)."""
    taps = torch.arange(1, k * k + 1, dtype=torch.float64).reshape(1, 1, k, k)  # tap id + 1, 0 means no entry
    ids = conv_matrix(taps, i, s, p, d).to_dense().long().tolist()
    return [[f"w_{{{(t - 1) // k},{(t - 1) % k}}}" if t else "0" for t in row] for row in ids]


def table(rows: list[list[str]], row_label: str, col_label: str) -> list[str]:
    """Right-aligned text table with labelled rows and columns."""
    heads = [f"{col_label}{j}" for j in range(len(rows[0]))]
    width = max(len(cell) for cell in heads + [c for row in rows for c in row])
    label_width = len(f"{row_label}{len(rows) - 1}")
    lines = [" " * label_width + " " + " ".join(h.rjust(width) for h in heads)]
    return lines + [f"{row_label}{r}".ljust(label_width) + " " + " ".join(c.rjust(width) for c in row)
                    for r, row in enumerate(rows)]


def sums(rows: list[list[str]], out: str, into: str, limit: int = 12) -> list[str]:
    """Each row of a wide matrix as a sum, 'y0 = w_{1,1} x0 + ...', at most limit rows."""
    lines = [f"{out}{r} = " + " + ".join(f"{c} {into}{j}" for j, c in enumerate(row) if c != "0")
             for r, row in enumerate(rows[:limit])]
    return lines + ([f"... ({len(rows) - limit} more rows)"] if len(rows) > limit else [])
