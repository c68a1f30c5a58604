"""`abaw smoothing-search` on SynthAffect: the chosen policy scores at least the paper's defaults on validation, the
new model folder (or the rewritten config) carries it to inference, and bad inputs give one clear line."""

import json

import pytest
import torch
from accelerate import Accelerator
from conftest import TINY_FACE_MAE

from modeling_abaw import FaceMAEConfig, FaceMAEForAffect, TMFConfig, TMFForAffect
from modeling_abaw.cli import main
from modeling_abaw.data import AffWild2
from modeling_abaw.evaluation import predict_frame_table, score_predictions
from modeling_abaw.inference import AffectPipeline
from modeling_abaw.smoothing import validate_smoothing_policy
from modeling_abaw.tasks import TASK_NAMES, TASKS, default_smoothing_policy


@pytest.fixture(scope="module")
def varied_model_dir(tmp_path_factory):
    """A tiny FaceMAEForAffect whose heads are initialised wide, so its predictions vary from frame to frame."""
    path = tmp_path_factory.mktemp("varied-face-mae")
    torch.manual_seed(0)
    FaceMAEForAffect(FaceMAEConfig(**TINY_FACE_MAE, head_initializer_range=2.0)).save_pretrained(path)
    return path


def search(*arguments) -> int:
    return main(["smoothing-search", *map(str, arguments)])


def bad_input(capsys, *arguments) -> str:
    """The one line `abaw smoothing-search` prints for a user's mistake (exit status 2)."""
    capsys.readouterr()
    assert search(*arguments) == 2
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("abaw smoothing-search: error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr  # (the other lines are transformers' loading bars)
    return errors[0]


def test_the_chosen_policy_scores_at_least_the_papers_defaults_and_reloads(
    tmp_path, tiny_synthaffect, varied_model_dir, capsys
):
    output = tmp_path / "searched"
    assert search("--model", varied_model_dir, "--data", tiny_synthaffect, "--output", output, "--device", "cpu") == 0
    printed = capsys.readouterr().out
    assert "| **chosen** |" in printed and "| gaussian ★ |" in printed
    report = json.loads((output / "smoothing_search.json").read_text())
    assert (output / "smoothing_search.md").is_file() and (output / "smoothing_search.png").is_file()
    chosen = report["policy"]
    assert sorted(chosen) == sorted(TASK_NAMES)

    # Measured again, apart from the search: the validation predictions scored with each policy.
    model = FaceMAEForAffect.from_pretrained(varied_model_dir)
    frames = AffWild2(tiny_synthaffect).frame_table("validation")
    table = predict_frame_table(Accelerator(cpu=True), model, frames, batch_size=16)
    chosen_scores = score_predictions(table, chosen)
    for kind in ("gaussian", "median", "average"):
        paper_scores = score_predictions(table, default_smoothing_policy(TASK_NAMES, kind))
        for name in TASK_NAMES:
            key = f"smoothed/{TASKS[name].metric_key}"
            assert chosen_scores[key] >= paper_scores[key], (name, kind)
            assert report["tasks"][name]["paper"][kind] == pytest.approx(paper_scores[key], abs=1e-6)
        assert chosen_scores["smoothed/score"] >= paper_scores["smoothed/score"]

    # The new folder is the same model with the chosen policy, and inference applies it.
    reloaded = FaceMAEForAffect.from_pretrained(output)
    assert reloaded.config.smoothing_policy == chosen
    for name, value in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], value)
    assert AffectPipeline.from_pretrained(str(output), device="cpu").smoothing_policy == validate_smoothing_policy(
        chosen
    )
    # The original model is untouched, and an existing --output is refused without --overwrite.
    assert FaceMAEForAffect.from_pretrained(varied_model_dir).config.smoothing_policy == default_smoothing_policy()
    assert "already exists; pass --overwrite" in bad_input(
        capsys, "--model", varied_model_dir, "--data", tiny_synthaffect, "--output", output
    )


def test_in_place_rewrites_the_models_config(tmp_path, tiny_synthaffect, varied_model_dir):
    model_dir = tmp_path / "model"
    FaceMAEForAffect.from_pretrained(varied_model_dir).save_pretrained(model_dir)
    before = json.loads((model_dir / "config.json").read_text())
    assert search("--model", model_dir, "--data", tiny_synthaffect, "--in-place", "--device", "cpu") == 0
    after = json.loads((model_dir / "config.json").read_text())
    report = json.loads((model_dir / "smoothing_search.json").read_text())
    assert after["smoothing_policy"] == report["policy"]
    assert {k: v for k, v in after.items() if k != "smoothing_policy"} == {
        k: v for k, v in before.items() if k != "smoothing_policy"
    }
    assert FaceMAEForAffect.from_pretrained(model_dir).config.smoothing_policy == report["policy"]


@pytest.fixture(scope="module")
def tmf_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tmf")
    config = TMFConfig(modalities={"mae": 32}, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                       num_hidden_layers=1, clip_length=8)  # fmt: skip
    TMFForAffect(config).save_pretrained(path)
    return path


def test_bad_inputs_give_one_line(tmp_path, tiny_synthaffect, varied_model_dir, tmf_model_dir, capsys):
    common = ["--data", tiny_synthaffect, "--device", "cpu"]
    both = bad_input(capsys, "--model", varied_model_dir, *common, "--output", tmp_path / "x", "--in-place")
    neither = bad_input(capsys, "--model", varied_model_dir, *common)
    for error in (both, neither):
        assert "give exactly one of --output NEW_MODEL_DIR and --in-place" in error
    hub = bad_input(capsys, "--model", "someone/face-mae-au", *common, "--in-place")
    assert "--model must be a local model folder" in hub and "--output" in hub
    same = bad_input(capsys, "--model", varied_model_dir, *common, "--output", varied_model_dir, "--overwrite")
    assert "is the model folder itself; use --in-place" in same
    no_features = bad_input(capsys, "--model", tmf_model_dir, *common, "--output", tmp_path / "tmf")
    assert "TMFForAffect" in no_features and "pass --features" in no_features
    features_for_mae = bad_input(capsys, "--model", varied_model_dir, *common, "--output", tmp_path / "y",
                                 "--features", tmp_path)  # fmt: skip
    assert "--features and --clip-stride are for TMF models" in features_for_mae
    assert not (tmp_path / "x").exists() and not (tmp_path / "tmf").exists()
