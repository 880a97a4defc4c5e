"""Commands on the browser explorer: serve."""
from __future__ import annotations

import argparse
import errno
import sys

from genlab.cli.commands import COMMANDS
from genlab.cli.common import add_data_flags, add_weights_flag, open_trained_run
from genlab.errors import ConfigError


def cmd_serve(args: argparse.Namespace) -> int:
    from genlab.serve.api import Explorer
    from genlab.serve.server import is_loopback, make_server

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535 (0 picks a free port), got {args.port}")
    explorer = Explorer(open_trained_run(args), args.data_dir)
    try:
        server = make_server(explorer, args.host, args.port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:  # most often a first `genlab serve` still running
            raise ConfigError(f"cannot listen on {args.host}:{args.port}: the port is in use (another genlab serve?); "
                              f"give another --port, or --port 0 for a free one") from None
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({e.strerror}); try another --port") from None
    host, port = server.server_address[:2]
    if not is_loopback(host):
        print(f"genlab serve: warning: {args.host} ({host}) is not a loopback address, so other machines can reach "
              f"the explorer, and it has no authentication: anyone who reaches port {port} can use it; "
              f"use --host 127.0.0.1 unless that is what you want", file=sys.stderr, flush=True)
    print(f"genlab explorer for {args.run}: http://{host}:{port}/  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C is how the explorer is meant to stop: not a failure
        print("genlab explorer stopped", flush=True)
    finally:
        server.server_close()
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("serve", help=COMMANDS["serve"].help,
                            description="Serve the latent explorer for RUN on a local address and print it.")
    p.add_argument("run", metavar="RUN", help="run directory of an autoencoder, VAE or GAN")
    p.add_argument("--port", type=int, default=8765, help="default 8765 (0 picks a free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="default 127.0.0.1 (this machine only); any other address warns: the explorer has no login")
    add_data_flags(p, with_name=False)
    add_weights_flag(p)
    p.set_defaults(handler=cmd_serve)
