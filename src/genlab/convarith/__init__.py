"""Convolution arithmetic: `arithmetic` (sizes, the sparse matrix C, C^T and the equivalent direct convolution),
`explain` (the same as text for a terminal) and `pictures` (an image through a conv and back, sliding-kernel GIFs).

Kept empty so that `genlab convarith ... --help` loads no torch; import the module you need.
"""
