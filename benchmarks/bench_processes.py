"""`abaw predict` on several distinct videos: one process against several (`--num-processes`), on CPU.

    python benchmarks/bench_processes.py                         # 4 videos x 90 frames, ViT-Small, 2 rounds (~6 min)
    python benchmarks/bench_processes.py --launcher accelerate   # the processes started by `accelerate launch`

Every run is the whole command in a fresh interpreter, as a user runs it (start-up, model loading and all), on the
same generated SynthAffect videos with a random-weight FaceMAEForAffect (speed does not depend on the weights), the
encoder in float32 on torch (no `--dtype auto` measurement). Three ways to spend the machine's cores:

* 1 process x 1 thread: the scaling reference (N processes can at best be N times faster than it);
* 1 process x all cores: what `abaw predict` does alone, torch spreading each forward pass over the cores;
* N processes x cores/N threads: the videos split over the processes (longest first), each on its share of the cores.

On a CPU, one process already keeps the cores busy with its threads, so processes gain only what the threads lose
(the work outside the encoder's matrix products, which runs on one core, and the threads' synchronisation), minus
each extra process's start-up (see the CPU seconds, of all the processes of a run); against 1 process x 1 thread,
the same processes show how they scale. Each run's CSVs are compared with the 1 x 1 run's: they must be equal byte
for byte where the threads per process are equal. Other processes on the machine slow the timings down; the load
average is printed beside them.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modeling_abaw.machine import cpu_model, usable_cores
from modeling_abaw.presets import FACE_MAE_PRESETS, face_mae_preset


def make_inputs(work: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """A random-weight model and `args.videos` distinct generated videos (a face in a 320x240 room, with audio)."""
    import torch

    from modeling_abaw import FaceMAEConfig, FaceMAEForAffect
    from modeling_abaw.data.synth import generate_synthaffect

    torch.manual_seed(0)
    FaceMAEForAffect(FaceMAEConfig(**face_mae_preset(args.model_size))).save_pretrained(work / "model")
    generate_synthaffect(work / "synth", num_videos=args.videos, num_frames=args.frames, seed=1)
    return work / "model", work / "synth" / "videos"


def timed_predict(
    model: Path, videos: Path, output: Path, processes: int, threads: int, launcher: str
) -> tuple[float, float, float]:
    """Wall-clock and CPU seconds (all its processes) of one `abaw predict` run, and the load average after it."""
    arguments = [str(videos), "--model", str(model), "--output", str(output), "--device", "cpu", "--dtype", "float32"]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    if processes > 1 and launcher == "accelerate":
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes)]
        command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        command += ["--num_cpu_threads_per_process", str(threads), "-m", "modeling_abaw.cli", "predict", *arguments]
        environment["ACCELERATE_USE_CPU"] = "1"
    else:
        command = [sys.executable, "-m", "modeling_abaw.cli", "predict", *arguments, "--num-processes", str(processes)]
    start, cpu = time.perf_counter(), os.times()
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    seconds, cpu_after = time.perf_counter() - start, os.times()
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    cpu_seconds = cpu_after.children_user + cpu_after.children_system - cpu.children_user - cpu.children_system
    return seconds, cpu_seconds, os.getloadavg()[0]


def compare(reference: Path, output: Path) -> str:
    """'identical' when every CSV equals the reference's byte for byte, else the largest difference of a value."""
    import numpy as np
    import pandas as pd

    names = sorted(path.name for path in reference.glob("*.csv"))
    if filecmp.cmpfiles(reference, output, names, shallow=False)[0] == names:
        return "identical"
    largest = 0.0
    for name in names:
        expected, got = pd.read_csv(reference / name), pd.read_csv(output / name)
        numbers = expected.select_dtypes("number").columns
        largest = max(largest, float(np.nanmax(np.abs(expected[numbers].to_numpy() - got[numbers].to_numpy()))))
    return f"max abs difference {largest:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-size", choices=FACE_MAE_PRESETS, default="vit-small")
    parser.add_argument("--videos", type=int, default=4, help="distinct generated videos")
    parser.add_argument("--frames", type=int, default=90, help="frames per video")
    parser.add_argument("--processes", type=int, default=2, help="processes of the multi-process run")
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="rounds of runs; each configuration's median run is reported (of two: the faster)",
    )
    parser.add_argument(
        "--launcher",
        choices=["abaw", "accelerate"],
        default="abaw",
        help="start the processes with `abaw predict --num-processes` (default) or `accelerate launch`",
    )
    args = parser.parse_args()

    import torch

    cores = usable_cores()
    threads = max(1, cores // args.processes)
    print(f"CPU: {cpu_model()} ({cores} cores); Python {platform.python_version()}, torch {torch.__version__}")
    print(
        f"{args.videos} SynthAffect videos x {args.frames} frames (320x240), {args.model_size} float32, "
        f"processes started by {args.launcher}\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model, videos = make_inputs(work, args)
        runs = {
            "1 process x 1 thread": (1, 1),
            f"1 process x {cores} threads": (1, cores),
            f"{args.processes} processes x {threads} thread(s)": (args.processes, threads),
        }
        # Round by round, every configuration once, so that a change of load on the machine hits each alike; each
        # configuration's median run is reported.
        measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for index, (name, (processes, run_threads)) in enumerate(runs.items()):
                output = work / f"out{index}"
                shutil.rmtree(output, ignore_errors=True)
                measured[name].append(timed_predict(model, videos, output, processes, run_threads, args.launcher))
        medians = {name: sorted(values)[(len(values) - 1) // 2] for name, values in measured.items()}
        reference, alone = medians[next(iter(runs))][0], medians[f"1 process x {cores} threads"][0]
        print(
            "| run | wall (s) | CPU (s) | videos/min | speed-up vs 1 x 1 | speed-up vs 1 process | CSVs vs 1 x 1 "
            "| load |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for index, (name, (seconds, cpu_seconds, load)) in enumerate(medians.items()):
            print(
                f"| {name} | {seconds:.1f} | {cpu_seconds:.1f} | {args.videos / seconds * 60:.1f} | "
                f"{reference / seconds:.2f}x | {alone / seconds:.2f}x | {compare(work / 'out0', work / f'out{index}')} "
                f"| {load:.2f} |"
            )
        if args.repeats > 1:
            walls = ", ".join(
                f"{name}: {' / '.join(f'{run[0]:.1f}' for run in runs)}" for name, runs in measured.items()
            )
            print(f"\nevery run's wall time (s): {walls}")


if __name__ == "__main__":
    main()
