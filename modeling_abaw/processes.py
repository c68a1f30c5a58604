"""Several processes sharing the inputs of one command (`abaw predict`, `abaw extract-features`).

The processes are started by `accelerate launch` (or torchrun), or by the command's own `--num-processes` (`launch`,
which also keeps the command's exit status and one-line errors: a launcher turns a process's non-zero status into a
report with a traceback). Each process loads the model on its own device, takes its share of the inputs
(`share`) and writes each input's outputs itself, atomically (`modeling_abaw.io`). What must be decided once (refusing
earlier results, writing a cache index) is either decided alike in every process from the same options and files,
before any process writes (a barrier follows), or by the main process alone (`on_main_process`; `main_process_first`
for a model whose download or measured backend the others then read from the cache). One process without a launcher
is Accelerate's single process: everything below reduces to what the command does alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from .errors import InputError
from .machine import usable_cores
from .progress import no_library_bars

# Once a process has exited, the others have this long to exit too (they all end right after the same last barrier)
# before `launch` stops them: a process that died (killed, out of memory) leaves the others waiting at a barrier.
EXIT_GRACE_SECONDS = 30

T = TypeVar("T")


def add_process_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--num-processes",
        type=int,
        default=1,
        help=f"split the {what} over this many processes (default 1), each on its own GPU (cuda:0, cuda:1, ...) or "
        "its share of the CPU cores (cores/N torch threads; an OMP_NUM_THREADS above 1 is kept). `accelerate launch "
        "--multi_gpu --num_processes N -m modeling_abaw.cli ...` (with ACCELERATE_USE_CPU=1 on CPU) does the same, "
        "but adds its own report with a traceback to any exit status but 0",
    )


def start(device: str):
    """This process's Accelerate `PartialState` and the device it runs the model on.

    `device` is the command's --device. Under a launcher, each process takes its own GPU for "auto" and "cuda"
    (cuda:<local process index>), and on CPU a share of the cores. ACCELERATE_USE_CPU=1 (`accelerate launch --cpu`)
    makes "auto" the CPU. Processes on CPU or MPS talk over gloo; the state must know, or it would take each launched
    process for a single one and every process would do every input.
    """
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    from .inference import resolve_device

    use_cpu, on_cuda = parse_flag_from_env("ACCELERATE_USE_CPU"), _on_cuda(device)
    gpus, processes_here = torch.cuda.device_count(), _int_from_env("LOCAL_WORLD_SIZE")
    if on_cuda and device in ("auto", "cuda") and processes_here > gpus:
        # Checked before Accelerate, which would fail on the processes without a GPU; alike in every process.
        if _int_from_env("RANK"):
            raise SystemExit(2)
        raise InputError(f"{processes_here} processes, {gpus} GPU(s): one GPU per process (or --device cpu)")
    state = PartialState(cpu=not on_cuda)
    with same_errors_everywhere(state):
        resolved = resolve_device("cpu" if use_cpu and device == "auto" else device)
    if state.num_processes > 1:
        if not state.is_main_process:  # one progress view: the main process's
            no_library_bars()
        if resolved.type == "cuda" and resolved.index is None:
            resolved = state.device
        if resolved.type == "cpu" and _int_from_env("OMP_NUM_THREADS") <= 1:
            local_processes = _int_from_env("LOCAL_WORLD_SIZE") or state.num_processes
            torch.set_num_threads(max(1, usable_cores() // local_processes))
    return state, resolved


def _on_cuda(device: str) -> bool:
    """Whether the command's --device means the GPUs."""
    import torch
    from accelerate.utils import parse_flag_from_env

    wants_cuda = device == "auto" or device.startswith("cuda")
    return wants_cuda and torch.cuda.is_available() and not parse_flag_from_env("ACCELERATE_USE_CPU")


def _int_from_env(name: str) -> int:
    try:
        return int(os.environ.get(name, "0"))
    except ValueError:
        return 0


@contextmanager
def same_errors_everywhere(state) -> Iterator[None]:
    """For the set-up that every process runs alike (the same options, files and model): an InputError there is met
    by every process, so the main process reports it (the command's one line) and the others exit quietly with
    status 2."""
    try:
        yield
    except InputError:
        if state.is_main_process:
            raise
        raise SystemExit(2) from None


def on_main_process(state, function: Callable[[], object]) -> None:
    """`function()` in the main process only, the others waiting for it; an InputError it raises is raised in every
    process alike (alone, the main process would exit and leave the others waiting)."""
    _on_main_process(state, function)


def main_process_first(state, function: Callable[[], T]) -> T:
    """`function()` in the main process, then in the others: for work whose first run fills a cache that the others
    read (a download, the encoder's measured backend). An InputError of the main process is raised in every process
    alike, before the others start."""
    result = _on_main_process(state, function)
    return result if state.is_main_process else function()


def _on_main_process(state, function: Callable[[], T]) -> T | None:
    if state.num_processes == 1:
        return function()
    from accelerate.utils import broadcast_object_list

    result, error = None, None
    if state.is_main_process:
        try:
            result = function()
        except InputError as exception:
            error = str(exception)
    (error,) = broadcast_object_list([error])
    if error is not None:
        raise InputError(error)
    return result


def share(costs: Sequence[float], state) -> list[int]:
    """The indices (in order) of the items this process takes, of items with the given costs (e.g. file sizes).

    Each item goes to exactly one process: longest first, each to the process with the least work so far (ties: the
    fewest items, then the lowest index), so an uneven list or a few long videos still balance. Every process
    computes the same assignment from the same list."""
    loads = [(0.0, 0, process) for process in range(state.num_processes)]
    shares: list[list[int]] = [[] for _ in range(state.num_processes)]
    for index in sorted(range(len(costs)), key=lambda index: (-costs[index], index)):
        load, count, process = min(loads)
        shares[process].append(index)
        loads[process] = (load + costs[index], count + 1, process)
    return sorted(shares[state.process_index])


@contextmanager
def outputs_progress(paths: Sequence[Path], enabled: bool, desc: str, unit: str) -> Iterator[None]:
    """A bar of the outputs that every process has written, for the main process: each of `paths` (the last file an
    input's processing writes) counts once it is a new file, that is, not the file there at the start. Outputs are
    moved into place whole, each one a new file, so the count is exact however many processes write."""
    if not enabled:
        yield
        return
    import threading

    from tqdm.auto import tqdm

    def signature(path: Path):
        try:
            status = path.stat()
        except FileNotFoundError:
            return None
        return status.st_ino, status.st_mtime_ns

    before = [signature(path) for path in paths]

    def count() -> int:
        return sum(signature(path) not in (None, old) for path, old in zip(paths, before))

    stop = threading.Event()
    with tqdm(total=len(paths), desc=desc, unit=unit, position=0, disable=None) as bar:

        def poll() -> None:
            while not stop.wait(0.5):
                bar.update(count() - bar.n)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join()
            bar.update(count() - bar.n)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(args: argparse.Namespace) -> int:
    """Run the command (`args.func`) in `args.num_processes` new processes on this machine, as `accelerate launch`
    would; its exit status (every process computes the same one, and reports errors once)."""
    import multiprocessing
    import multiprocessing.connection
    import signal
    import time

    if args.num_processes < 1:
        raise InputError(f"--num-processes must be positive, got {args.num_processes}")
    if _int_from_env("WORLD_SIZE") > 1:
        raise InputError("--num-processes under accelerate launch or torchrun: use one or the other")
    context = multiprocessing.get_context("spawn")  # a fork would copy the parent's threads and CUDA state
    port = free_port()
    worker_args = argparse.Namespace(**{**vars(args), "num_processes": 1})
    workers = [
        context.Process(target=_worker, args=(worker_args, rank, args.num_processes, port))
        for rank in range(args.num_processes)
    ]
    # The processes start with Ctrl-C ignored, so that one during their imports is no traceback (this process stops
    # them, below); each takes Ctrl-C again once the command runs (`_worker`), to stop between whole files.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for worker in workers:
            worker.start()
    finally:
        signal.signal(signal.SIGINT, previous)

    failures: list[tuple[int, int]] = []  # (process index, exit status) of processes that failed, as they end
    stopped = []  # the processes stopped here

    def wait_for_workers(grace_since: float | None = None) -> None:
        """Until every process has ended; the others are stopped `EXIT_GRACE_SECONDS` after the first ends (or
        after `grace_since`)."""
        first_exit = grace_since
        while alive := [worker for worker in workers if worker.is_alive()]:
            multiprocessing.connection.wait([worker.sentinel for worker in alive], timeout=1)
            for rank, worker in enumerate(workers):
                if worker.exitcode and rank not in dict(failures):
                    failures.append((rank, worker.exitcode))
            if first_exit is None and any(worker.exitcode is not None for worker in workers):
                first_exit = time.monotonic()
            if first_exit is not None and time.monotonic() - first_exit > EXIT_GRACE_SECONDS:
                for worker in alive:
                    worker.terminate()
                    stopped.append(worker)

    interrupted = False
    try:
        try:
            wait_for_workers()
        except KeyboardInterrupt:  # Ctrl-C reached the workers too: they stop by themselves (a second one stops them)
            interrupted = True
            wait_for_workers(grace_since=time.monotonic())  # one still starting up ignored the Ctrl-C
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()
    if interrupted:
        raise KeyboardInterrupt
    if not failures:
        return 0
    rank, status = failures[0]  # the first to fail; the others failed alike or were stopped
    if status < 0:  # killed: it could not say so itself
        others = f"; the {len(stopped)} left waiting for it were stopped" if stopped else ""
        print(
            f"abaw {args.command}: error: process {rank} of {args.num_processes} was killed (signal {-status}){others}",
            file=sys.stderr,
        )
        return 128 - status  # as a shell reports a process killed by a signal
    return status


def _worker(args: argparse.Namespace, rank: int, num_processes: int, port: int) -> None:
    """One process of `launch`: the launcher's environment, then the command, reporting as `modeling_abaw.cli`."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(num_processes),
        LOCAL_WORLD_SIZE=str(num_processes),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    # Accelerate warns on CPU when OMP_NUM_THREADS is unset; `start` chooses the threads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        status = args.func(args) or 0
    except InputError as error:
        print(f"abaw {args.command}: error: {error}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        status = 130  # the parent reports the interruption, once
    sys.exit(status)
