"""`abaw predict` and `abaw extract-features` on two real CPU processes (gloo), by `accelerate launch` and by their own
`--num-processes`: the same files as one process, each input done once, resumable, errors and totals reported once.

The one-process references run here with as many torch threads as each of the two processes gets (cores / 2): float
sums over a different number of threads may differ in their last bits, and with the same number the outputs must be
equal byte for byte.
"""

import filecmp
import os
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_FACE_MAE
from safetensors.torch import load_file

from modeling_abaw.cli import main
from modeling_abaw.data import read_submission
from modeling_abaw.machine import usable_cores
from modeling_abaw.processes import share
from modeling_abaw.tasks import AU, EXPR

VIDEOS = ("synth_000", "synth_001", "synth_002")  # an odd count: the processes get 2 and 1
# The encoder in float32 on torch, not the fastest path that `--dtype auto` measures on this machine: the same
# everywhere, and no measuring.
FLOAT32 = ("--dtype", "float32")
ENVIRONMENT = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def on_two_processes(*arguments, launcher: str = "accelerate") -> subprocess.CompletedProcess:
    """`accelerate launch --multi_gpu --num_processes 2 -m modeling_abaw.cli ARGUMENTS` (or the command's own
    `--num-processes 2`), output captured (no TTY)."""
    if launcher == "accelerate":
        command = [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), "-m", "modeling_abaw.cli", *map(str, arguments),
        ]  # fmt: skip
    else:
        command = [sys.executable, "-m", "modeling_abaw.cli", *map(str, arguments), "--num-processes", "2"]
    return subprocess.run(command, env=ENVIRONMENT, capture_output=True, text=True, timeout=300)


@contextmanager
def threads_of_one_of_two_processes():
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, usable_cores() // 2))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def same_files(first, second, ignore=()) -> bool:
    """Whether two folders hold the same files, byte for byte (but for the subfolders `ignore`)."""

    def names(folder):
        return sorted(
            str(path.relative_to(folder))
            for path in folder.rglob("*")
            if path.is_file() and path.relative_to(folder).parts[0] not in ignore
        )

    files = names(first)
    return files == names(second) and filecmp.cmpfiles(first, second, files, shallow=False)[0] == files


@pytest.fixture(scope="module")
def videos(tmp_path_factory, tiny_synthaffect):
    folder = tmp_path_factory.mktemp("multiprocess") / "videos"
    folder.mkdir()
    for video in VIDEOS:
        shutil.copy(tiny_synthaffect / "videos" / f"{video}.mp4", folder)
    return folder


@pytest.fixture(scope="module")
def decisive_model(tmp_path_factory):
    """A tiny affect model whose heads are initialised wide (MAE's std 2e-5 makes every expression's probability
    0.125 to 5 decimals): the ABAW files, which take decisions from 6-decimal CSVs on resume, then test something."""
    from modeling_abaw import FaceMAEConfig, FaceMAEForAffect

    path = tmp_path_factory.mktemp("decisive-model")
    torch.manual_seed(0)
    FaceMAEForAffect(FaceMAEConfig(**TINY_FACE_MAE, head_initializer_range=0.5)).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def predictions(videos, decisive_model):
    """The outputs of one process and of two (accelerate launch) on the same videos, and the launch's result."""
    root = videos.parent
    arguments = [videos, "--model", decisive_model, "--abaw-format", "--device", "cpu", *FLOAT32]
    with threads_of_one_of_two_processes():
        assert main(["predict", *map(str, arguments), "--output", str(root / "one")]) == 0
    result = on_two_processes("predict", *arguments, "--output", root / "two")
    return root / "one", root / "two", result


def test_predict_on_two_processes_writes_what_one_process_writes(predictions):
    one, two, result = predictions
    assert result.returncode == 0, result.stderr[-3000:]
    assert same_files(one, two)  # every CSV, figure and ABAW file, byte for byte
    assert sorted(path.name for path in two.glob("*.csv")) == [f"{video}.csv" for video in VIDEOS]
    # Reported once, by the main process; no progress bars off a terminal.
    assert result.stderr.count("abaw predict: 3 of 3 input(s) done") == 1, result.stderr[-3000:]
    assert "\r" not in result.stderr and "\x1b[" not in result.stderr


def test_resume_on_two_processes_redoes_only_what_is_missing_and_reports_failures_once(
    predictions, decisive_model, tmp_path
):
    one, two, _ = predictions
    output = tmp_path / "out"
    shutil.copytree(two, output)
    (output / "synth_001.png").unlink()  # as if interrupted between its CSV and its figure
    (output / "abaw" / "VA_Estimation_Challenge.csv").unlink()
    kept = {path: path.stat().st_mtime_ns for path in output.glob("synth_00[02].*")}
    inputs = tmp_path / "inputs"
    shutil.copytree(two.parent / "videos", inputs)
    (inputs / "broken.mp4").write_bytes((inputs / "synth_000.mp4").read_bytes()[:3000])

    result = on_two_processes(
        "predict", inputs, tmp_path / "missing.mp4", "--model", decisive_model, "--output", output,
        "--resume", "--abaw-format", "--device", "cpu", *FLOAT32, launcher="own",
    )  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if line.startswith("abaw predict: error")]
    assert result.returncode == 1, result.stderr[-3000:]
    assert len(errors) == 2 and sum("broken.mp4" in e for e in errors) == sum("missing.mp4" in e for e in errors) == 1
    assert result.stderr.count("3 of 4 input(s) done (2 from an earlier run)") == 1, result.stderr[-3000:]
    assert {path: path.stat().st_mtime_ns for path in kept} == kept  # the inputs done were not redone
    assert same_files(one, output, ignore=["abaw"])  # the redone input as before
    assert not list(output.rglob(".*"))  # no temporary file left
    # The ABAW files (without the broken video) take the inputs done earlier from their CSVs, to 6 decimals.
    for task, filename in (
        ("au", "AU_Detection_Challenge"),
        ("expr", "EXPR_Recognition_Challenge"),
        ("va", "VA_Estimation_Challenge"),
    ):
        expected, resumed = (read_submission(folder / "abaw" / f"{filename}.csv", task) for folder in (one, output))
        assert list(resumed) == list(expected) == list(VIDEOS)
        for video in VIDEOS:
            if task == "au":  # a decision may differ where the probability rounds to the threshold 0.5
                probabilities = pd.read_csv(one / f"{video}.csv")[list(AU.labels)].to_numpy()
                clear = np.abs(probabilities - AU.threshold) > 1e-6
                np.testing.assert_array_equal(resumed[video][clear], expected[video][clear])
            elif task == "expr":  # the argmax may differ where the two likeliest expressions round to a tie
                probabilities = np.sort(pd.read_csv(one / f"{video}.csv")[list(EXPR.labels)].to_numpy(), axis=1)
                clear = probabilities[:, -1] - probabilities[:, -2] > 1e-6
                assert clear.mean() > 0.9  # nearly every frame compared
                np.testing.assert_array_equal(resumed[video][clear], expected[video][clear])
            else:
                np.testing.assert_allclose(resumed[video], expected[video], rtol=0, atol=1e-6)  # 6 decimals, float32


def test_results_already_there_are_refused_once_before_any_process_writes(predictions):
    _, two, _ = predictions
    before = {path: path.stat().st_mtime_ns for path in two.rglob("*")}
    result = on_two_processes("predict", two.parent / "videos", "--model", "unused", "--output", two, launcher="own")
    errors = [line for line in result.stderr.splitlines() if line.startswith("abaw predict: error")]
    assert result.returncode == 2 and len(errors) == 1 and "already exists" in errors[0], result.stderr[-3000:]
    assert {path: path.stat().st_mtime_ns for path in two.rglob("*")} == before


def test_extract_features_on_two_processes_gives_the_tensors_of_one(
    tiny_synthaffect, tiny_face_mae_affect_dir, tmp_path
):
    arguments = ["--data", tiny_synthaffect, "--visual", tiny_face_mae_affect_dir, "--audio", "logmel"]
    with threads_of_one_of_two_processes():
        assert main(["extract-features", *map(str, arguments), "--output", str(tmp_path / "one")]) == 0
    result = on_two_processes("extract-features", *arguments, "--output", tmp_path / "two")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("videos in") == 1
    one, two = tmp_path / "one", tmp_path / "two"
    assert (one / "features.json").read_text() == (two / "features.json").read_text()
    files = sorted(path.name for path in (one / "videos").iterdir())
    assert files == sorted(path.name for path in (two / "videos").iterdir()) and len(files) == 5  # an odd count
    for name in files:
        expected, got = load_file(one / "videos" / name), load_file(two / "videos" / name)
        assert sorted(expected) == sorted(got) and all(torch.equal(expected[key], got[key]) for key in expected)


@pytest.mark.parametrize("costs", [[5, 1, 1, 1, 1, 1], [3, 3, 3], [], [0, 0, 0, 0, 0], [1, 9, 2, 8, 3, 7, 4]])
@pytest.mark.parametrize("num_processes", [1, 2, 3])
def test_every_item_goes_to_one_process_and_the_work_balances(costs, num_processes):
    shares = [share(costs, SimpleNamespace(num_processes=num_processes, process_index=i)) for i in range(num_processes)]
    assert sorted(index for indices in shares for index in indices) == list(range(len(costs)))
    assert all(indices == sorted(indices) for indices in shares)
    if num_processes == 1:
        assert shares == [list(range(len(costs)))]  # one process: every input, in order
    loads = [sum(costs[index] for index in indices) for indices in shares]
    assert max(loads, default=0) - min(loads, default=0) <= max(costs, default=0)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1 or max(costs) > min(costs)
