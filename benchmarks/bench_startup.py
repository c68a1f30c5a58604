"""Start-up time of the `abaw` command line, against the floor set by its dependencies.

    python benchmarks/bench_startup.py               # 5 runs of each command
    python benchmarks/bench_startup.py --repeats 1   # a quick look (~2 min on 2 cores while help costs ~7 s)

Each command runs in a fresh interpreter, several times; the median wall-clock time is reported with its ratio to
`python -c "import torch, transformers"`, the cost of the libraries every checkpoint needs. `abaw --help` and every
`abaw <command> --help` should cost no more than `import modeling_abaw`, and that no more than the floor. One more
run of each lists the heavy modules it imported, which explains a regression (a command module importing its
implementation at module level shows up as pandas, datasets, accelerate, ...). Other processes on the machine slow
the timings down; the load average is printed beside them.

Then `abaw predict` with a ViT-B (random weights): an image, whole command, and the steps of a 150-frame video up to
its first predicted frame (imports, model load, the face pass over the whole video, the first encoder batch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from modeling_abaw.machine import cpu_model

# Libraries too heavy for help: the first two are the floor, the others belong to the commands' implementations.
HEAVY_MODULES = (
    "torch", "transformers.modeling_utils", "numpy", "PIL", "datasets", "accelerate", "av", "cv2", "matplotlib",
    "pandas", "scipy", "modeling_abaw.train.",
)  # fmt: skip

# Runs `python ARGS...` (`-c CODE` or `-m MODULE ...`) as the interpreter would, then prints the heavy modules.
REPORT_IMPORTS = """
import json, runpy, sys
arguments = sys.argv[1:]
try:
    if arguments[0] == "-c":
        exec(compile(arguments[1], "<string>", "exec"), {{"__name__": "__main__"}})
    else:
        sys.argv = arguments[1:]
        runpy.run_module(arguments[1], run_name="__main__", alter_sys=True)
except SystemExit:
    pass
heavy = {heavy!r}
names = {{name for name in sys.modules if name.startswith(heavy)}}
print(json.dumps(sorted({{next(h.rstrip(".") for h in heavy if n.startswith(h)) for n in names}})))
"""


def commands() -> list[str]:
    from modeling_abaw.cli import build_parser

    (subparsers,) = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    return list(subparsers.choices)


def median_seconds(arguments: list[str], repeats: int, environment: dict) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *arguments], env=environment, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def heavy_imports(arguments: list[str], environment: dict) -> list[str]:
    code = REPORT_IMPORTS.format(heavy=HEAVY_MODULES)
    result = subprocess.run(
        [sys.executable, "-c", code, *arguments], env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


# Child of the time-to-first-frame measurement: wall-clock times (time.time(), comparable with the parent's) of each
# step of predicting one video, the first frame counting as predicted when the encoder's first batch is done.
FIRST_FRAME = """
import json, sys, time
from modeling_abaw.inference import AffectPipeline
imported = time.time()
pipeline = AffectPipeline.from_pretrained(sys.argv[1], device="cpu", dtype="float32")
loaded, first = time.time(), []
encode = pipeline._encode_crops
def timed_encode(*args, **kwargs):
    outputs = encode(*args, **kwargs)
    first.append(first[0] if first else time.time())
    return outputs
pipeline._encode_crops = timed_encode
table = pipeline(sys.argv[2])
print(json.dumps({"imported": imported, "loaded": loaded, "first_batch": first[0], "done": time.time(),
                  "frames": len(table)}))
"""


def time_to_first_frame(environment: dict, repeats: int) -> None:
    """`abaw predict` on an image, whole, and the steps of predicting a video (ViT-B, random weights)."""
    import tempfile
    from pathlib import Path

    import torch
    from PIL import Image

    from modeling_abaw import FaceMAEConfig, FaceMAEForAffect
    from modeling_abaw.data.synth import generate_synthaffect
    from modeling_abaw.presets import face_mae_preset

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        torch.manual_seed(0)
        FaceMAEForAffect(FaceMAEConfig(**face_mae_preset("vit-base"))).save_pretrained(work / "model")
        root = generate_synthaffect(work / "synth", num_videos=1, num_frames=150, seed=1).root
        video = root / "videos" / "synth_000.mp4"
        image = work / "face.png"
        Image.open(next((root / "cropped_aligned" / "synth_000").glob("*.jpg"))).save(image)
        # float32: the measurement `--dtype auto` makes once per machine and model is not start-up.
        command = [
            "-m",
            "modeling_abaw.cli",
            "predict",
            str(image),
            "--model",
            str(work / "model"),
            "--dtype",
            "float32",
        ]
        runs = [[*command, "--output", str(work / f"out{index}")] for index in range(repeats)]
        seconds = statistics.median(median_seconds(run, 1, environment) for run in runs)
        steps = []
        for _ in range(repeats):
            started = time.time()
            result = subprocess.run(
                [sys.executable, "-c", FIRST_FRAME, str(work / "model"), str(video)],
                env=environment, capture_output=True, text=True, check=True,
            )  # fmt: skip
            times = json.loads(result.stdout.strip().splitlines()[-1])
            steps.append({key: value - started for key, value in times.items() if key != "frames"})
        median = {key: statistics.median(step[key] for step in steps) for key in steps[0]}
    print(f"\nabaw predict, ViT-B (random weights), CPU float32, median of {repeats}:")
    print(f"  one image, whole command (start-up, load, detect, encode, CSV + PNG): {seconds:.2f} s")
    print(f"  a {times['frames']}-frame video: imports done {median['imported']:.2f} s, model loaded "
          f"{median['loaded']:.2f} s, first frame predicted {median['first_batch']:.2f} s (after the face pass over "
          f"the whole video and one encoder batch), all done {median['done']:.2f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command; the median is reported")
    args = parser.parse_args()

    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    measured = {
        'python -c "import torch, transformers"': ["-c", "import torch, transformers"],
        'python -c "import modeling_abaw"': ["-c", "import modeling_abaw"],
        "abaw --help": ["-m", "modeling_abaw.cli", "--help"],
    }
    measured.update({f"abaw {name} --help": ["-m", "modeling_abaw.cli", name, "--help"] for name in commands()})

    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); Python {platform.python_version()}; {args.repeats} runs each")
    print(f"load average before: {', '.join(f'{load:.2f}' for load in os.getloadavg())}\n")
    width = max(map(len, measured))
    print(f"{'command':<{width}}  median s  x floor  heavy modules imported")
    floor = None
    for name, arguments in measured.items():
        seconds = median_seconds(arguments, args.repeats, environment)
        floor = floor or seconds  # the first command, import torch, transformers
        modules = ", ".join(heavy_imports(arguments, environment)) or "-"
        print(f"{name:<{width}}  {seconds:8.2f}  {seconds / floor:7.2f}  {modules}", flush=True)
    time_to_first_frame(environment, args.repeats)
    print(f"\nload average after: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
