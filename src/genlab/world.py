"""The process group of a torchrun job, used by training and evaluation alike: this process's place in it
(`World`), the rule that rank 0 alone writes and prints, each rank's share of a batch or of a set of images,
the once-per-epoch reductions, peer failures as one line, and the device a name resolves to.

Outside torchrun every helper here is the identity: a `World` of one process, no process group.
"""
from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from genlab.errors import ConfigError, GenlabError, TrainingError, stop_with, stopping

T = TypeVar("T")
# a lost peer normally shows within seconds (its sockets close); the timeout only bounds a silent hang
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=10)
SEED_STRIDE = 0x9E3779B97F4A7C15  # odd 64-bit constant: rank streams far apart in seed space


class PeerFailure(GenlabError):
    """Another process of the torchrun job failed or the job was stopped; this one stops with it."""


def launched_world_size() -> int:
    """WORLD_SIZE as torchrun sets it; 1 outside torchrun."""
    if "RANK" not in os.environ or "MASTER_ADDR" not in os.environ:
        return 1
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number; launch with torchrun") from None


def is_rank_zero() -> bool:
    """True outside torchrun and in its rank 0: the process that speaks and writes."""
    return launched_world_size() <= 1 or os.environ.get("RANK") == "0"


@dataclass(frozen=True)
class World:
    """This process's place in the job: rank among size processes, local_rank on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def writes(self) -> bool:
        """Rank 0 alone writes the run directory and prints; the others never touch it."""
        return self.rank == 0

    def place(self, device: torch.device) -> torch.device:
        """The device of this rank: cuda:LOCAL_RANK on a GPU machine, the CPU otherwise."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" and self.active else device

    def seed(self, seed: int) -> int:
        """Rank 0 keeps the run's seed (one process reproduces it); rank r draws its own noise stream."""
        return (seed + self.rank * SEED_STRIDE) % 2**63

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size % self.size:
            raise every_rank(ConfigError(f"--batch-size is the global batch and must split evenly over the {self.size} "
                                         f"processes: {batch_size} does not; use a multiple of {self.size}"))

    def drops_last_batch(self, n: int, batch_size: int) -> bool:
        """A last batch whose share per process is under 2 images is skipped (batch norm needs 2)."""
        last = n % batch_size
        return last != 0 and last // self.size < 2

    def batch_indices(self, perm: Tensor, batch_size: int, drop_last: bool) -> Iterator[Tensor]:
        """This rank's slice of each global batch perm[s:s+B]: the images s + r*B/size onwards; a short last
        batch loses its last (len % size) images so every rank gets as many. Views only: no host sync."""
        n = len(perm)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            share = min(batch_size, stop - start) // self.size
            yield perm[start + self.rank * share:start + (self.rank + 1) * share]


def resolve_device(name: str | torch.device) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is an error, not a silent CPU run."""
    if isinstance(name, torch.device):
        return name
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def join(device: str | torch.device) -> World:
    """The torchrun job's process group, joined once per process (gloo on CPU, nccl on CUDA); a World of one
    process outside torchrun."""
    if launched_world_size() <= 1:
        return World()
    kind = torch.device(device).type if isinstance(device, torch.device) or device in ("cpu", "cuda") else (
        "cuda" if torch.cuda.is_available() else "cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if kind == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend_for(kind), timeout=COLLECTIVE_TIMEOUT)
        signal.signal(signal.SIGTERM, stop_on_sigterm)
        # left at exit, not after each command: a group joined again in one process would find the first
        # one's stale addresses in torchrun's store and hang
        atexit.register(leave)
    return World(dist.get_rank(), dist.get_world_size(), local_rank)


def backend_for(device_type: str) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device_type == "cuda" else "gloo"


EXIT_WAIT = datetime.timedelta(seconds=10)


def leave() -> None:
    """Destroy the process group, if this process joined one (at exit)."""
    if dist.is_available() and dist.is_initialized():
        try:  # every rank reaches the teardown before any closes its connections (a peer's gloo thread aborts
            # when the other side vanishes under it); a dead or stuck peer costs at most EXIT_WAIT
            dist.monitored_barrier(timeout=EXIT_WAIT)
        except RuntimeError:
            pass
        dist.destroy_process_group()


def stop_on_sigterm(signum: int, frame: Any) -> None:
    """torchrun's agent sends SIGTERM to the survivors when one process dies: stop with one line. A second
    SIGTERM while the first one's exception unwinds is ignored, so the cleanup on the way out finishes."""
    if stopping() is not None:
        return
    raise stop_with(PeerFailure(
        "this process was stopped (SIGTERM): another process of the torchrun job failed or the job was cancelled; "
        "the run directory keeps its last complete epoch, and the same torchrun command with --resume continues it"))


@contextlib.contextmanager
def peer_failures(world: World) -> Iterator[None]:
    """A collective that fails because a peer died becomes one PeerFailure line, not a traceback."""
    try:
        yield
    except (dist.DistError, RuntimeError) as err:
        if not world.active or not looks_like_lost_peer(err):
            raise
        raise PeerFailure(f"another process of the torchrun job stopped ({first_line(err)}); the run directory "
                          f"keeps its last complete epoch, and the same torchrun command with --resume "
                          f"continues it") from None


def looks_like_lost_peer(err: BaseException) -> bool:
    text = str(err).lower()
    return isinstance(err, dist.DistError) or any(
        word in text for word in ("gloo", "nccl", "connection", "peer", "socket", "timed out", "broken pipe"))


def first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:160]


def every_rank(error: GenlabError) -> GenlabError:
    """Mark an error that every rank raises alike (a diverged loss): rank 0 alone prints it."""
    error.every_rank = True
    error.silent = not is_rank_zero()
    return error


def from_rank_zero(world: World, work: Callable[[], T]) -> T:
    """Run `work` on rank 0 alone and hand its result (or its error) to every rank.

    An error that is not genlab's (a bug, a plugin's own exception) still reaches the others, as one PeerFailure
    line, before rank 0 raises it: they would otherwise wait in the broadcast until rank 0's process is gone.
    """
    if not world.active:
        return work()
    box: list[Any] = [None]
    if world.writes:
        try:
            box[0] = ("ok", work())
        except GenlabError as err:
            box[0] = ("error", err)
        except Exception as err:
            box[0] = ("failed", f"{type(err).__name__}: {first_line(err)}")
            dist.broadcast_object_list(box, src=0)
            raise
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "failed":
        raise PeerFailure(f"rank 0 of the torchrun job failed ({value}); its own output says where, and this "
                          f"process stops with it")
    if kind == "error":
        raise value if world.writes else every_rank(type(value)(str(value)))
    return value


# ---------------------------------------------------------------- once per epoch


def sum_over_ranks(world: World, sums: Tensor, seen: int) -> tuple[Tensor, int]:
    """The loss sums and image count of all ranks, bit for bit the same on every rank: once per pass over a
    split, never per step. Decisions that end or branch the loop (a diverged loss, early stopping, the best
    weights) are taken on these numbers, so every rank takes the same one."""
    if not world.active:
        return sums, seen
    # float64: the image count stays exact far beyond float32's 2^24
    packed = torch.cat([sums.double(), sums.new_tensor([seen], dtype=torch.float64)])
    dist.all_reduce(packed)
    # no backend documents that every rank gets the same bits from an all-reduce: rank 0's copy settles it
    dist.broadcast(packed, src=0)
    return packed[:-1].to(sums.dtype), int(packed[-1].item())


def share_buffers(world: World, model: nn.Module) -> None:
    """Rank 0's batch-norm statistics to every rank, so all ranks evaluate (and resume) the same model."""
    if world.active:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def gather_rng(world: World, device: torch.device) -> dict[str, list[Tensor]]:
    """Every rank's random-number state, for rank 0's checkpoint (collective: all ranks call it)."""
    if not world.active:
        return {}
    states = {"rng_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["rng_cuda"] = torch.cuda.get_rng_state(device)
    gathered = {}
    for name, state in states.items():
        local = state.to(device) if dist.get_backend() == "nccl" else state
        parts = [torch.empty_like(local) for _ in range(world.size)]
        dist.all_gather(parts, local)
        gathered[f"{name}_ranks"] = [part.cpu() for part in parts]
    return gathered


def rank_rng(world: World, state: dict[str, Any], name: str) -> Tensor | None:
    """This rank's saved RNG state, when the checkpoint holds one per rank for the same number of ranks."""
    ranks = state.get(f"{name}_ranks")
    if not world.active or not isinstance(ranks, list) or len(ranks) != world.size:
        return state.get(name) if world.rank == 0 else None
    return ranks[world.rank] if isinstance(ranks[world.rank], Tensor) else None


def diverged(world: World, message: str) -> TrainingError:
    return every_rank(TrainingError(message)) if world.active else TrainingError(message)


# ---------------------------------------------------------------- sharded evaluation


def shard(world: World, n: int) -> slice:
    """This rank's contiguous share of n items (shares differ by at most one)."""
    return slice(n * world.rank // world.size, n * (world.rank + 1) // world.size)


def sharded(world: World, work: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """work(x) with the rows of x split over the ranks and the per-row results gathered back in order
    (on the CPU), so every rank holds what one process computes alone."""
    if not world.active:
        return work(x)
    part = work(x[shard(world, len(x))]).cpu()
    device = torch.device("cuda", world.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    sizes = [len(x[shard(World(r, world.size), len(x))]) for r in range(world.size)]
    padded = torch.zeros((max(sizes), *part.shape[1:]), dtype=part.dtype, device=device)
    padded[:len(part)] = part.to(device)
    parts = [torch.empty_like(padded) for _ in range(world.size)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:size].cpu() for p, size in zip(parts, sizes)])
