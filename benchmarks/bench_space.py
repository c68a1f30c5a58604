"""The Gradio Space under load: concurrent gradio_client users, the queue bound, and the server's memory.

    python benchmarks/bench_space.py                  # ~3 min on 2 cores
    python benchmarks/bench_space.py --clients 16 --rounds 5

Each server is `spaces/app.py`'s page served in its own subprocess on 127.0.0.1 (random-weight FaceMAE of a preset of
`modeling_abaw.presets`, generated SynthAffect clips), so its resident memory (RSS) is its own; this process samples
it every `--sample-every` seconds while

* `--clients` gradio_client users, each with its own connection, submit an analysis of a short clip at the same time,
  `--rounds` times: every one must get its table back, and the RSS after each round shows whether memory grows with
  the requests served (the uploads and results the Space keeps are files, not memory);
* against a server whose queue holds `--queue-size` requests, users arrive one after the other while the first ones
  run on a longer clip: the app's CONCURRENCY_LIMIT run, `--queue-size` wait, and the next must be told the queue is
  full — the bound a shared Space sets with QUEUE_MAX_SIZE.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from gradio_client import Client, handle_file
from gradio_client.client import Job
from gradio_client.utils import Status

from modeling_abaw.machine import cpu_model
from modeling_abaw.presets import FACE_MAE_PRESETS, face_mae_preset

# What a client sees of a running request: processing, and the progress and log messages it sends meanwhile.
RUNNING = {Status.PROCESSING, Status.PROGRESS, Status.LOG}
APP_FILE = Path(__file__).resolve().parents[1] / "spaces" / "app.py"


def load_app():
    """spaces/app.py as a module (by path: `import spaces.app` would find the ZeroGPU `spaces` package)."""
    spec = importlib.util.spec_from_file_location("space_app", APP_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve(args: argparse.Namespace) -> None:
    """The server subprocess: the Space's page with a queue of `--queue-size`, until killed."""
    app = load_app()
    app.EXAMPLES_DIR, app.RESULTS_DIR = Path(args.cache) / "examples", Path(args.cache) / "results"
    app.limit_malloc_arenas()  # as the app's main() does
    demo = app.build_demo([args.model])
    demo.queue(max_size=args.queue_size).launch(server_name="127.0.0.1", server_port=args.port, quiet=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A Space server subprocess, its URL, and its RSS sampled in the background (MB)."""

    def __init__(self, model: Path, queue_size: int, cache: Path, sample_every: float):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        command = [sys.executable, __file__, "--serve", "--model", str(model), "--queue-size", str(queue_size)]
        command += ["--port", str(self.port), "--cache", str(cache)]
        env = os.environ | {"GRADIO_TEMP_DIR": str(cache / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"}
        self.log = cache / "server.log"  # the server's output, shown when a request failed
        cache.mkdir(parents=True)
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, args=(sample_every,), daemon=True)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 300
        while True:  # serving once the port answers
            if self.process.poll() is not None:
                sys.exit(f"the server exited:\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("the server did not start within 300 s")
                time.sleep(0.5)
        self._sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._sampler.join()
        self.process.kill()
        self.process.wait()

    def _sample(self, every: float) -> None:
        process = psutil.Process(self.process.pid)
        while not self._stop.wait(every):
            self.samples.append(self.rss_mb(process))

    def last_error(self) -> str:
        """The server log's last exception line: why the requests that failed did."""
        errors = [line for line in self.log.read_text().splitlines() if "Error:" in line or "error:" in line]
        return errors[-1] if errors else "(none in the server log)"

    def rss_mb(self, process: psutil.Process | None = None) -> float:
        return (process or psutil.Process(self.process.pid)).memory_info().rss / 2**20


def analyze(url: str, clip: Path, model: str):
    """One user: a fresh client submits the clip to the `analyze` endpoint and waits for the table."""
    client = Client(url, verbose=False, download_files=False)  # the figure and CSV stay on the server
    table, *_ = client.predict(handle_file(str(clip)), model, api_name="/analyze")
    return table


def concurrent_rounds(server: Server, clip: Path, model: str, args: argparse.Namespace) -> list[dict]:
    rounds = []
    for _ in range(args.rounds):
        started, first_sample = time.perf_counter(), len(server.samples)
        with ThreadPoolExecutor(args.clients) as pool:
            outcomes = list(pool.map(lambda _: outcome(analyze, server.url, clip, model), range(args.clients)))
        answered = sum(isinstance(table, dict) and len(table.get("data", ())) == args.frames for table in outcomes)
        failures = [str(error) for error in outcomes if isinstance(error, Exception)]
        rounds.append(
            {
                "answered": answered,
                "failures": failures,
                "server_error": server.last_error() if failures else "",
                "seconds": time.perf_counter() - started,
                "peak_mb": max(server.samples[first_sample:], default=server.rss_mb()),
                "after_mb": server.rss_mb(),
            }
        )
    return rounds


def outcome(function, *args):
    """`function(*args)`, or the exception it raised: every user's result is reported, failures included."""
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 (a failed request is a measurement here)
        return error


def arrive(url: str, clip: Path, model: str, running: bool) -> Job:
    """One more user, returned once the server has placed the request: running (`running`) or waiting in the queue
    (else), or already answered or refused; so the next user arrives behind it."""
    job = Client(url, verbose=False, download_files=False).submit(handle_file(str(clip)), model, api_name="/analyze")
    placed = RUNNING if running else RUNNING | {Status.IN_QUEUE}
    while not job.done() and job.status().code not in placed:
        time.sleep(0.05)
    return job


def queue_bound(server: Server, clip: Path, model: str, running: int, queue_size: int) -> list[str]:
    """Users arriving one by one while the first analyses run: what each one got ("answered" or the error)."""
    jobs = [arrive(server.url, clip, model, number < running) for number in range(running + queue_size + 1)]
    results = [outcome(job.result) for job in jobs]
    return [str(result) if isinstance(result, Exception) else "answered" for result in results]


def make_inputs(work: Path, args: argparse.Namespace) -> dict[str, Path]:
    import torch

    from modeling_abaw import FaceMAEConfig, FaceMAEForAffect
    from modeling_abaw.data.synth import generate_synthaffect

    torch.manual_seed(0)
    FaceMAEForAffect(FaceMAEConfig(**face_mae_preset(args.model_size))).save_pretrained(work / "model")
    paths = {"model": work / "model"}
    for name, frames in (("short", args.frames), ("long", args.long_frames)):
        generate_synthaffect(work / name, num_videos=1, num_frames=frames, seed=1)
        paths[name] = work / name / "videos" / "synth_000.mp4"
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-size", choices=FACE_MAE_PRESETS, default="demo-small")
    parser.add_argument("--clients", type=int, default=8, help="users submitting at the same time")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --clients users")
    parser.add_argument("--frames", type=int, default=30, help="frames of the short clip (1 s)")
    parser.add_argument("--long-frames", type=int, default=300, help="frames of the clip that keeps the queue busy")
    parser.add_argument("--queue-size", type=int, default=2, help="queue bound of the queue-full check")
    parser.add_argument("--sample-every", type=float, default=0.1, help="seconds between RSS samples")
    # Internal: the server subprocess.
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    for name in ("model", "cache"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args)

    app = load_app()
    started = time.perf_counter()
    print(
        f"{cpu_model()}, {os.cpu_count()} CPUs; FaceMAE {args.model_size} (random weights); the app's "
        f"QUEUE_MAX_SIZE {app.QUEUE_MAX_SIZE}, CONCURRENCY_LIMIT {app.CONCURRENCY_LIMIT}\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        paths = make_inputs(work, args)
        model = str(paths["model"])
        with Server(paths["model"], app.QUEUE_MAX_SIZE, work / "load", args.sample_every) as server:
            idle_mb = server.rss_mb()
            analyze(server.url, paths["short"], model)  # the first analysis sets up what every later one reuses
            warm_mb = server.rss_mb()
            rounds = concurrent_rounds(server, paths["short"], model, args)
        print(f"{args.clients} concurrent users x {args.rounds} rounds, {args.frames}-frame clip each:\n")
        print(f"server RSS idle {idle_mb:.0f} MB, after one analysis {warm_mb:.0f} MB\n")
        print("| round | answered | wall (s) | peak RSS (MB) | RSS after the round (MB) |\n|---|---:|---:|---:|---:|")
        for number, r in enumerate(rounds, 1):
            print(
                f"| {number} | {r['answered']}/{args.clients} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | "
                f"{r['after_mb']:.0f} |"
            )
            if r["failures"]:
                print(f"  {len(r['failures'])} failed: {r['failures'][0]}\n  server: {r['server_error']}")

        with Server(paths["model"], args.queue_size, work / "bound", args.sample_every) as server:
            answers = queue_bound(server, paths["long"], model, app.CONCURRENCY_LIMIT, args.queue_size)
        print(
            f"\nqueue bound: max_size {args.queue_size}, {app.CONCURRENCY_LIMIT} running; users arriving one by one "
            f"({args.long_frames}-frame clip):\n"
        )
        print("| user | outcome |\n|---:|---|")
        for number, answer in enumerate(answers, 1):
            print(f"| {number} | {answer} |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
