"""Wall time of `generate_synthaffect` drawing its videos in one process against drawing them in parallel workers.

    python benchmarks/bench_synth.py                  # 16 videos x 100 frames, one serial and one parallel run
    python benchmarks/bench_synth.py --repeats 2      # twice, alternating, to see how steady the machine is

Both runs write the same dataset (with its mp4s) into a temporary folder, one after the other in this process; the
parallel run starts fresh workers, so their start-up (each imports the package) is part of its time, as it is for
a user. Reported per run: wall-clock seconds, CPU seconds of this process and its workers, and the parallel/serial
ratio of wall times (1/workers at best). The two datasets are compared file by file. Other processes on the machine
slow the timings down; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import tempfile
import time
from pathlib import Path

from modeling_abaw.data.synth import generate_synthaffect
from modeling_abaw.machine import cpu_model, usable_cores


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the workers, once their pool has shut down)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def timed_run(root: Path, args: argparse.Namespace, num_workers: int | None) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one generation."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    generate_synthaffect(root, args.videos, args.frames, seed=0, progress=False, num_workers=num_workers)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def load_average() -> str:
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=100, help="frames per video")
    parser.add_argument("--workers", type=int, default=None, help="parallel workers (default: generate's default)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    cores = usable_cores()
    print(f"CPU: {cpu_model()} ({cores} usable cores); {args.videos} videos x {args.frames} frames with mp4s")
    print(f"load average before: {load_average()}\n")
    print("run  serial s (cpu s)  parallel s (cpu s)  parallel/serial")
    with tempfile.TemporaryDirectory() as folder:
        serial_root, parallel_root = Path(folder, "serial"), Path(folder, "parallel")
        for run in range(1, args.repeats + 1):
            serial = timed_run(serial_root, args, num_workers=0)
            parallel = timed_run(parallel_root, args, num_workers=args.workers)
            print(
                f"{run:3d}  {serial[0]:8.1f} ({serial[1]:5.1f})  {parallel[0]:10.1f} ({parallel[1]:5.1f})"
                f"  {parallel[0] / serial[0]:15.2f}",
                flush=True,
            )
        same = file_hashes(serial_root) == file_hashes(parallel_root)
    print(f"\nsame files, byte for byte: {'yes' if same else 'NO'}")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
