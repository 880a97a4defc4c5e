"""Commands on convolution arithmetic: convarith explain, demo, animate."""
from __future__ import annotations

import argparse

from genlab.cli.commands import COMMANDS
from genlab.cli.common import add_zoom_flag, at_least, check_zoom


def cmd_convarith_explain(args: argparse.Namespace) -> int:
    from genlab.convarith.explain import explain

    print(explain(args.i, args.k, args.s, args.p, args.output_padding, args.d))
    return 0


def cmd_convarith_demo(args: argparse.Namespace) -> int:
    from genlab.convarith.pictures import write_demo

    at_least("--size", args.size, 8)
    check_zoom(args)
    out = write_demo(args.image, args.out, args.size, args.k, args.s, args.p, args.zoom)
    print(f"{out}: rows box blur, edge; columns original, after conv (true size), after transposed conv")
    return 0


def cmd_convarith_animate(args: argparse.Namespace) -> int:
    from genlab.convarith.pictures import write_animations

    at_least("--frame-ms", args.frame_ms, 1)
    for path in write_animations(args.out_dir, args.i, args.k, args.s, args.p, args.output_padding, args.d,
                                 args.frame_ms):
        print(path)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("convarith", help=COMMANDS["convarith"].help,
                            description="A convolution as a sparse matrix C, its transposed convolution as C^T "
                                        "(Dumoulin & Visin, 'A guide to convolution arithmetic').")
    convarith_commands = p.add_subparsers(title="convarith commands", metavar="ACTION", required=True)
    explain_q = convarith_commands.add_parser(
        "explain", help="print the sizes, C as a table and the transpose as a direct convolution",
        description="Print the output sizes, the matrix C of the convolution as a table of kernel entries, "
                    "and the transposed convolution C^T as a stride-1 direct convolution.")
    demo_q = convarith_commands.add_parser(
        "demo", help="an image after a strided conv and after the matching transposed conv",
        description="Write a PNG: rows box blur and edge kernel; columns the original, after the strided "
                    "convolution (true size) and after the transposed convolution back to full size.")
    demo_q.add_argument("image", metavar="IMAGE", help="a PNG or JPEG file")
    demo_q.add_argument("--size", type=int, default=128, help="centre-crop and resize to this square (default 128)")
    add_zoom_flag(demo_q)
    demo_q.add_argument("--out", default="convarith-demo.png", help="PNG path (default convarith-demo.png)")
    animate_q = convarith_commands.add_parser(
        "animate", help="GIFs of the kernel sliding, for a conv and its transpose",
        description="Write conv-*.gif and transposed-*.gif: the kernel sliding over the (padded, and for the "
                    "transpose zero-stretched) input, one frame per output cell.")
    animate_q.add_argument("--out-dir", default=".", help="folder for the two GIFs (default .)")
    animate_q.add_argument("--frame-ms", type=int, default=500, help="milliseconds per frame (default 500)")
    for q, (i, k, s, pad) in ((explain_q, (4, 3, 1, 0)), (demo_q, (None, 3, 2, 1)), (animate_q, (5, 3, 2, 1))):
        if i is not None:
            q.add_argument("-i", type=int, default=i, help=f"input size (default {i})")
        q.add_argument("-k", type=int, default=k, help=f"kernel size (default {k})")
        q.add_argument("-s", type=int, default=s, help=f"stride (default {s})")
        q.add_argument("-p", type=int, default=pad, help=f"zero padding (default {pad})")
        if i is not None:
            q.add_argument("-d", type=int, default=1, help="dilation (default 1)")
            q.add_argument("--output-padding", type=int, help="of the transposed convolution (default: the one "
                                                              "that makes C^T return size i)")
    explain_q.set_defaults(handler=cmd_convarith_explain)
    demo_q.set_defaults(handler=cmd_convarith_demo)
    animate_q.set_defaults(handler=cmd_convarith_animate)
