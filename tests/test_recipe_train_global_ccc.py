"""Eq. 3's CCC over the global batch: with two real processes (gloo on CPU, `accelerate launch`), the affect stages'
loss and the DDP gradient equal the single-process ones of the same global batch.

Run as a script under `accelerate launch` (what the test does), this file computes each process's loss and gradient
on its half of a fixed global batch and writes them to `<output>/rank_<i>.json`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import TINY_FACE_MAE

from modeling_abaw import FaceMAEConfig, FaceMAEForAffect
from modeling_abaw.losses import task_loss
from modeling_abaw.tasks import AU, VA

GLOBAL_BATCH = 8
TASK_SETS = (["va"], ["au", "va"])


def global_batch() -> dict[str, torch.Tensor]:
    """8 frames with AU and VA labels; some markers (no label) in both, a valence marker in the second half."""
    generator = torch.Generator().manual_seed(0)
    au = torch.randint(0, 2, (GLOBAL_BATCH, 12), generator=generator).float()
    au[1, 3] = au[6, 0] = AU.invalid_value
    va = torch.rand(GLOBAL_BATCH, 2, generator=generator) * 2 - 1
    va[5, 0] = VA.invalid_value
    pixels = torch.randn(GLOBAL_BATCH, 3, 32, 32, generator=generator)
    return {"pixel_values": pixels, "au_labels": au, "va_labels": va}


def tiny_model(tasks: list[str]) -> FaceMAEForAffect:
    torch.manual_seed(0)
    # Heads at the usual 0.02 std rather than MAE's 2e-5: predictions must vary for the CCCs to tell apart.
    return FaceMAEForAffect(FaceMAEConfig(**TINY_FACE_MAE, tasks=tasks, head_initializer_range=0.02))


def gradient(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def run_one_process_of_two(output: Path) -> None:
    from accelerate import Accelerator

    from modeling_abaw.train.affect_loss import affect_loss

    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    half = slice(rank * GLOBAL_BATCH // 2, (rank + 1) * GLOBAL_BATCH // 2)
    batch = {name: values[half] for name, values in global_batch().items()}
    results = {}
    for tasks in TASK_SETS:
        model = accelerator.prepare(tiny_model(tasks))
        loss = affect_loss(accelerator, model, {"pixel_values": batch["pixel_values"]}, batch, tasks)
        accelerator.backward(loss)
        results[",".join(tasks)] = {"loss": loss.item(), "gradient": gradient(model).tolist()}
    (output / f"rank_{rank}.json").write_text(json.dumps(results))


def test_va_loss_and_gradient_of_two_processes_equal_one_process_on_the_global_batch(tmp_path):
    from test_train_distributed import free_port

    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), __file__, str(tmp_path),
    ]  # fmt: skip
    environment = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    result = subprocess.run(launch, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank_{rank}.json").read_text()) for rank in (0, 1)]

    batch = global_batch()
    halves = (slice(0, 4), slice(4, 8))
    for tasks in TASK_SETS:
        model = tiny_model(tasks)
        outputs = model(pixel_values=batch["pixel_values"])
        global_va = task_loss(VA, outputs.va, batch["va_labels"])
        # AU (a mean over samples) stays per process; DDP averages the two processes' gradients.
        au_per_process = [
            task_loss(AU, outputs.au_logits[half], batch["au_labels"][half]) if "au" in tasks else torch.zeros(())
            for half in halves
        ]
        (global_va + sum(au_per_process) / 2).backward()
        expected_gradient = gradient(model)
        for rank, results in enumerate(ranks):
            got = results[",".join(tasks)]
            assert abs(got["loss"] - (global_va + au_per_process[rank]).item()) < 1e-6, (tasks, rank)
            torch.testing.assert_close(torch.tensor(got["gradient"]), expected_gradient, rtol=0, atol=1e-6)

    # The test tells the per-process CCC (each process's 4 frames) from the global one.
    local_va = sum(task_loss(VA, outputs.va[half], batch["va_labels"][half]) for half in halves) / 2
    assert abs(local_va.item() - global_va.item()) > 1e-3


if __name__ == "__main__":
    run_one_process_of_two(Path(sys.argv[1]))
