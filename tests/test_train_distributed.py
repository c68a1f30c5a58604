"""The three training stages run as two real processes on CPU (gloo) with `accelerate launch`."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest
import torch
from conftest import TINY_FACE_MAE
from safetensors.torch import load_file
from test_train import make_feature_cache, make_pretrained_face_mae, make_synthaffect, make_tmf_config
from transformers import AutoModel

from modeling_abaw import FaceMAEPreTrainingConfig
from modeling_abaw.data import AffWild2, FrameDataset

MODEL_CLASSES = {"pretrain": "FaceMAEForPreTraining", "finetune": "FaceMAEForAffect", "tmf": "TMFForAffect"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_on_two_processes(stage: str, arguments: list[str]) -> subprocess.CompletedProcess:
    """`accelerate launch --multi_gpu --num_processes 2 -m modeling_abaw.train.<stage>`, output captured (no TTY)."""
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
    ]  # fmt: skip
    environment = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    stage_flags = ["--num_workers", "0", "--report_to", "none", "--record_process_info"]
    command = [*launch, "-m", f"modeling_abaw.train.{stage}", *arguments, *stage_flags]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthaffect(tmp_path_factory.mktemp("distributed") / "synth")


@pytest.mark.parametrize("stage", ["pretrain", pytest.param("finetune", marks=pytest.mark.smoke), "tmf"])
def test_stage_on_two_processes_writes_best_and_final_with_the_same_weights_everywhere(stage, synth, tmp_path):
    output = tmp_path / "out"
    if stage == "pretrain":
        config = tmp_path / "config"
        FaceMAEPreTrainingConfig(**TINY_FACE_MAE).save_pretrained(config)
        arguments = ["--data", str(synth), "--model", str(config), "--validation_fraction", "0.1", "--max_steps", "2"]
        arguments += ["--batch_size", "8"]
    elif stage == "finetune":
        arguments = ["--data", str(synth), "--model", str(make_pretrained_face_mae(tmp_path / "pretrained"))]
        arguments += ["--tasks", "au,expr", "--num_epochs", "1", "--batch_size", "8", "--save_steps", "2"]
        arguments += ["--save_total_limit", "3", "--max_grad_norm", "0.5"]
    else:  # TMF reads its model's config on the wrapped (DistributedDataParallel) model in evaluation
        cache = make_feature_cache(synth, tmp_path / "features")
        arguments = ["--data", str(synth), "--features", str(cache.path)]
        arguments += ["--model", str(make_tmf_config(tmp_path / "tmf-config"))]
        arguments += ["--tasks", "expr,va", "--modalities", "mae,vggish", "--batch_size", "2", "--max_steps", "2"]
    result = launch_on_two_processes(stage, [*arguments, "--output_dir", str(output)])
    assert result.returncode == 0, result.stderr[-3000:]

    for name in ("best", "final"):
        assert type(AutoModel.from_pretrained(output / name)).__name__ == MODEL_CLASSES[stage]
    ranks = [json.loads((output / "process_info" / f"rank_{rank}.json").read_text()) for rank in (0, 1)]
    assert [info["process_index"] for info in ranks] == [0, 1]
    assert all(info["num_processes"] == 2 and info["device"].startswith("cpu") for info in ranks)
    assert ranks[0]["parameter_checksum"] == ranks[1]["parameter_checksum"]
    seen = [info["train_indices"] for info in ranks]
    assert seen[0] and not set(seen[0]) & set(seen[1])  # each process its own shard
    # Output captured, not a terminal: plain lines, no progress-bar redraws.
    for text in (result.stdout, result.stderr):
        assert "\r" not in text and "\x1b[" not in text
    if stage == "finetune":
        check_finetune_sharding_and_checkpoints(synth, output, seen)


def check_finetune_sharding_and_checkpoints(synth, output, seen) -> None:
    # Sharded: each process trained on its own, equal half of every global batch (one epoch).
    train_set = FrameDataset(AffWild2(synth).frame_table("train"), None, labelled_only=True)
    assert len(seen[0]) == len(seen[1]) == len(train_set) // 8 * 4
    assert len(set(seen[0])) == len(seen[0])
    # Every validation frame with a face evaluated exactly once, although they do not split into equal batches of 4
    # over 2 processes: the shorter process repeats samples, which gather_for_metrics drops.
    validation_faces = len(FrameDataset(AffWild2(synth).frame_table("validation"), None))
    assert validation_faces % 8
    results = json.loads((output / "final" / "eval_results.json").read_text())
    assert results["num_samples"] == validation_faces
    # One set of model folders and checkpoints, written once.
    assert sorted(path.name for path in output.iterdir()) == [
        "best", "checkpoints", "final", "history.json", "process_info"
    ]  # fmt: skip
    steps = len(train_set) // 8
    checkpoints = sorted((output / "checkpoints").iterdir(), key=lambda path: int(path.name.split("_")[1]))
    kept = sorted({*range(2, steps + 1, 2), steps})[-3:]  # every 2 steps and at the end; the last 3 are kept
    assert [path.name for path in checkpoints] == [f"step_{step}" for step in kept]
    assert {path.name for path in checkpoints[-1].iterdir()} == {
        "model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl", "random_states_1.pkl",
        "training_state.json",
    }  # fmt: skip


def test_a_non_finite_loss_on_one_process_stops_every_process_at_the_same_step(synth, tmp_path):
    cache = make_feature_cache(synth, tmp_path / "features")
    video = AffWild2(synth).videos(["train"])[0]  # its clips go to one process or the other
    tensors = load_file(cache.video_path(video))
    cache.write_video(video, {**tensors, "mae": torch.full_like(tensors["mae"], float("nan"))})
    arguments = ["--data", str(synth), "--features", str(cache.path), "--tasks", "au", "--modalities", "mae"]
    arguments += ["--model", str(make_tmf_config(tmp_path / "tmf-config")), "--batch_size", "2", "--save_steps", "1"]
    result = launch_on_two_processes("tmf", [*arguments, "--output_dir", str(tmp_path / "out")])
    assert result.returncode != 0
    # Each process reports the same step: the one that met the NaN did not leave the other waiting or killed.
    errors = re.findall(r"error: non-finite loss \(nan\) at step \d+", result.stderr)
    assert len(errors) == 2 and errors[0] == errors[1], result.stderr[-3000:]
