"""The model a training stage starts from (`--model`): checkpoints, config-only folders, and the one clear line for
everything else; the loading summary instead of transformers' report."""

import json
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from conftest import TINY_FACE_MAE
from safetensors.torch import save_file
from test_train import QUICK, make_feature_cache, make_pretrained_face_mae, make_synthaffect

from modeling_abaw import FaceMAEConfig, FaceMAEForAffect, FaceMAEForPreTraining, FaceMAEPreTrainingConfig, TMFForAffect
from modeling_abaw.cli import main as abaw
from modeling_abaw.errors import InputError
from modeling_abaw.train import finetune
from modeling_abaw.train.checkpointing import load_model


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthaffect(tmp_path_factory.mktemp("start") / "synth")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    return make_pretrained_face_mae(tmp_path_factory.mktemp("start") / "face-mae")


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def stage_arguments(stage: str, synth: Path, model: Path, tmp_path: Path) -> list[str]:
    arguments = ["--data", str(synth), "--model", str(model), "--output_dir", str(tmp_path / "out"), *QUICK]
    if stage != "pretrain":
        arguments += ["--tasks", "au"]
    if stage == "tmf":
        arguments += ["--features", str(make_feature_cache(synth, tmp_path / "features").path)]
    return arguments


@pytest.mark.parametrize("stage", ["pretrain", "finetune", "tmf"])
def test_a_corrupt_config_is_one_error_line(stage, synth, tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "face_mae", "hidden_size": ')
    code = abaw(["train", stage, *stage_arguments(stage, synth, model, tmp_path)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error
    assert error.startswith(f"abaw train: error: {model}: cannot read its config.json")


def test_weights_in_a_pickle_format_are_an_error_not_a_new_model(synth, tmp_path):
    model = tmp_path / "bin-only"
    FaceMAEConfig(**TINY_FACE_MAE).save_pretrained(model)
    (model / "pytorch_model.bin").write_bytes(b"not unpickled")  # loading it would fail otherwise
    arguments = ["--data", str(synth), "--model", str(model), "--output_dir", str(tmp_path / "out"), *QUICK]
    arguments += ["--tasks", "au"]
    with pytest.raises(InputError, match=rf"{model}: no \*\.safetensors weights \(it holds pytorch_model\.bin\)"):
        finetune.main(arguments)
    assert not (tmp_path / "out").exists()


def test_other_unloadable_checkpoints_name_the_folder_and_the_problem(pretrained, tmp_path):
    shards_missing = tmp_path / "sharded"
    FaceMAEConfig(**TINY_FACE_MAE).save_pretrained(shards_missing)
    (shards_missing / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {}}))
    with pytest.raises(InputError, match="no \\*.safetensors weights \\(it holds model.safetensors.index.json\\)"):
        load_model(FaceMAEForAffect, str(shards_missing))

    foreign_weights = tmp_path / "foreign"
    FaceMAEConfig(**TINY_FACE_MAE).save_pretrained(foreign_weights)
    save_file({"classifier.weight": torch.zeros(2, 2)}, foreign_weights / "model.safetensors")
    with pytest.raises(InputError, match=f"{foreign_weights}: none of its weights belong to a FaceMAEForAffect"):
        load_model(FaceMAEForAffect, str(foreign_weights))

    with pytest.raises(InputError, match="a 'face_mae_pretraining' checkpoint; this stage trains TMFForAffect"):
        load_model(TMFForAffect, str(pretrained))
    with pytest.raises(InputError, match="no such model folder"):
        load_model(FaceMAEForAffect, str(tmp_path / "missing"))


def test_a_folder_with_only_a_config_means_a_new_model_of_that_architecture(tmp_path):
    FaceMAEPreTrainingConfig(**TINY_FACE_MAE).save_pretrained(tmp_path / "config")
    (tmp_path / "config" / "README.md").write_text("A tiny FaceMAE.\n")
    model, origin = load_model(FaceMAEForPreTraining, str(tmp_path / "config"))
    assert model.config.hidden_size == TINY_FACE_MAE["hidden_size"]
    assert (
        origin
        == f"New FaceMAEForPreTraining of the architecture in {tmp_path / 'config'}/config.json (no weights there)"
    )


def test_an_encoder_loads_into_the_affect_model_with_a_one_line_summary(pretrained, capfd):
    model, origin = load_model(FaceMAEForAffect, str(pretrained), tasks=["au", "expr", "va"])
    assert origin == (
        f"Loaded {pretrained} into FaceMAEForAffect; new: affect_heads.heads.{{au,expr,va}}, fc_norm; "
        "dropped: decoder, vit.layernorm (not in FaceMAEForAffect); --verbose lists every key"
    )
    encoder = FaceMAEForPreTraining.from_pretrained(pretrained).vit.embeddings.patch_embeddings.projection.weight
    torch.testing.assert_close(model.vit.embeddings.patch_embeddings.projection.weight, encoder)
    capfd.readouterr()
    _, report = load_model(FaceMAEForAffect, str(pretrained), verbose=True)
    lines = report.splitlines()
    assert lines[0].startswith(f"Loaded {pretrained}") and "  new fc_norm.weight" in lines
    assert "  dropped decoder.decoder_pred.weight" in lines
    output = capfd.readouterr()
    assert "LOAD REPORT" not in output.err + output.out and "You are using a model of type" not in output.err


def test_a_stage_log_is_plain_lines_with_the_summary_and_a_resumed_run_names_its_checkpoint(
    synth, pretrained, tmp_path, capfd
):
    arguments = ["--data", str(synth), "--model", str(pretrained), "--output_dir", str(tmp_path / "out"), *QUICK]
    arguments += ["--tasks", "au"]
    assert finetune.main([*arguments, "--max_steps", "2"]) == 0
    output = capfd.readouterr()
    log = output.out + output.err
    assert "\r" not in log and "\x1b[" not in log  # captured, not a terminal: no progress-bar redraws
    assert log.splitlines()[0].startswith(f"Loaded {pretrained} into FaceMAEForAffect; new: ")
    assert "step 2/2 (epoch " in log and "MISSING" not in log and "UNEXPECTED" not in log

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    assert finetune.main([*arguments, "--max_steps", "3", "--resume_from_checkpoint", "latest"]) == 0
    log = "".join(capfd.readouterr())
    assert log.splitlines()[0] == f"Resuming from {tmp_path / 'out' / 'checkpoints' / 'step_2'} (step 2)"
    assert "Loaded " not in log and "new: " not in log
