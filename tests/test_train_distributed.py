"""A training stage run as two real processes on CPU (gloo) with `accelerate launch`."""

import json
import os
import socket
import subprocess
import sys

from test_train import make_pretrained_face_mae, make_synthaffect
from transformers import AutoModel

from modeling_abaw.data import AffWild2, FrameDataset


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_finetune_on_two_processes_shards_data_and_counts_each_validation_frame_once(tmp_path):
    synth = make_synthaffect(tmp_path / "synth")
    pretrained = make_pretrained_face_mae(tmp_path / "pretrained")
    output = tmp_path / "out"
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
    ]  # fmt: skip
    stage = [
        "-m", "modeling_abaw.train.finetune", "--data", str(synth), "--model", str(pretrained),
        "--output_dir", str(output), "--tasks", "au,expr", "--num_epochs", "1", "--batch_size", "8",
        "--num_workers", "0", "--save_steps", "2", "--save_total_limit", "3", "--max_grad_norm", "0.5",
        "--record_process_info",
    ]  # fmt: skip
    environment = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    result = subprocess.run([*launch, *stage], env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    ranks = [json.loads((output / "process_info" / f"rank_{rank}.json").read_text()) for rank in (0, 1)]
    assert [info["process_index"] for info in ranks] == [0, 1]
    assert all(info["num_processes"] == 2 and info["device"].startswith("cpu") for info in ranks)
    # Sharded: each process trained on its own, equal half of every global batch (one epoch).
    train_set = FrameDataset(AffWild2(synth).frame_table("train"), None, labelled_only=True)
    seen = [info["train_indices"] for info in ranks]
    assert len(seen[0]) == len(seen[1]) == len(train_set) // 8 * 4
    assert not set(seen[0]) & set(seen[1]) and len(set(seen[0])) == len(seen[0])
    # Same parameters everywhere after the run.
    assert ranks[0]["parameter_checksum"] == ranks[1]["parameter_checksum"]
    # Every validation frame with a face evaluated exactly once, although they do not split into equal batches of 4
    # over 2 processes: the shorter process repeats samples, which gather_for_metrics drops.
    validation_faces = len(FrameDataset(AffWild2(synth).frame_table("validation"), None))
    assert validation_faces % 8
    results = json.loads((output / "final" / "eval_results.json").read_text())
    assert results["num_samples"] == validation_faces
    # One set of model folders and checkpoints, written once.
    assert sorted(path.name for path in output.iterdir()) == [
        "best", "checkpoints", "final", "history.json", "logs", "process_info"
    ]  # fmt: skip
    steps = len(train_set) // 8
    checkpoints = sorted((output / "checkpoints").iterdir(), key=lambda path: int(path.name.split("_")[1]))
    kept = sorted({*range(2, steps + 1, 2), steps})[-3:]  # every 2 steps and at the end; the last 3 are kept
    assert [path.name for path in checkpoints] == [f"step_{step}" for step in kept]
    assert {path.name for path in checkpoints[-1].iterdir()} == {
        "model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl", "random_states_1.pkl",
        "training_state.json",
    }  # fmt: skip
    assert type(AutoModel.from_pretrained(output / "final")).__name__ == "FaceMAEForAffect"
