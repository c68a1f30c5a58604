"""The training loop and the stage flags: a non-finite loss stops the run cleanly; flags in both spellings;
DataLoader workers from the machine."""

import json
import os

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file
from test_train import QUICK, make_feature_cache, make_synthaffect, make_tmf_config
from torch import nn

from modeling_abaw.cli import main as abaw
from modeling_abaw.errors import InputError
from modeling_abaw.train import arguments as stage_arguments
from modeling_abaw.train.arguments import TrainingArguments, parse_arguments
from modeling_abaw.train.finetune import FinetuneArguments
from modeling_abaw.train.loop import make_accelerator, train


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def test_a_non_finite_loss_stops_before_the_update_and_keeps_the_last_checkpoint(tmp_path):
    args = TrainingArguments(
        output_dir=str(tmp_path), batch_size=2, num_workers=0, save_steps=1, report_to="none", learning_rate=0.1
    )
    accelerator = make_accelerator(args)
    samples = [{"x": torch.randn(3)} for _ in range(10)]
    losses = iter([1.0, 1.0, float("nan")])

    def compute_loss(model, batch):
        return model(batch["x"]).pow(2).mean() * next(losses)  # the third step's loss is NaN

    with pytest.raises(InputError) as error:
        train(accelerator, args, nn.Linear(3, 1), "new", samples, samples, compute_loss, lambda model, data: {})
    checkpoint = tmp_path / "checkpoints" / "step_2"
    assert str(error.value) == f"non-finite loss (nan) at step 3; the last checkpoint is {checkpoint}"
    assert json.loads((checkpoint / "training_state.json").read_text())["step"] == 2
    assert all(torch.isfinite(tensor).all() for tensor in load_file(checkpoint / "model.safetensors").values())
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["step_1", "step_2"]
    assert not (tmp_path / "best").exists() and not (tmp_path / "final").exists()


def test_abaw_train_on_non_finite_inputs_is_one_line_and_status_2(tmp_path, capsys):
    synth = make_synthaffect(tmp_path / "synth")
    cache = make_feature_cache(synth, tmp_path / "features")
    for video in cache.videos:
        tensors = load_file(cache.video_path(video))
        cache.write_video(video, {**tensors, "mae": torch.full_like(tensors["mae"], float("nan"))})
    arguments = ["--data", str(synth), "--features", str(cache.path), "--model", str(make_tmf_config(tmp_path / "m"))]
    arguments += ["--tasks", "au", "--output_dir", str(tmp_path / "out"), *QUICK, "--batch_size", "2"]
    code = abaw(["train", "tmf", *arguments])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error == "abaw train: error: non-finite loss (nan) at step 1; no checkpoint was saved"


def test_every_flag_takes_the_dashed_spelling_too(tmp_path):
    dashed = parse_arguments(
        FinetuneArguments,
        ["--data", "d", "--model", "m", "--tasks", "au", "--output-dir", str(tmp_path), "--batch-size", "16"]
        + ["--num-workers", "1", "--layer-decay", "0.75", "--drop-path-rate", "0.2"]
        + ["--gradient-accumulation-steps", "2", "--resume-from-checkpoint", "latest", "--min-crop-scale", "0.5"],
    )
    assert (dashed.output_dir, dashed.batch_size, dashed.num_workers) == (str(tmp_path), 16, 1)
    assert (dashed.layer_decay, dashed.drop_path_rate) == (0.75, 0.2)
    assert (dashed.gradient_accumulation_steps, dashed.resume_from_checkpoint, dashed.min_crop_scale) == (
        2,
        "latest",
        0.5,
    )


@pytest.mark.parametrize("cores, workers", [(1, 0), (2, 2), (6, 6), (64, 8)])
def test_dataloader_workers_default_to_the_cores_of_this_machine(cores, workers, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert stage_arguments.default_num_workers() == workers
    assert TrainingArguments(output_dir="out").num_workers == workers
