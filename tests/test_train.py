"""The three training stages (modeling_abaw.train) on tiny SynthAffect data, in this process (one CPU process)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from accelerate.state import AcceleratorState, GradientState
from conftest import TINY_FACE_MAE
from safetensors.torch import load_file
from test_tmf import TINY_TMF
from transformers import AutoImageProcessor, AutoModel

from modeling_abaw import FaceMAEForPreTraining, FaceMAEPreTrainingConfig, TMFConfig
from modeling_abaw.cli import main as abaw
from modeling_abaw.data import AffWild2, FrameDataset, expr_class_weights, splits
from modeling_abaw.data.synth import generate_synthaffect
from modeling_abaw.errors import InputError
from modeling_abaw.features import FeatureCache
from modeling_abaw.train import finetune, pretrain, tmf

# Flags every test run shares: tiny batches, no worker processes, frequent logging.
QUICK = ["--batch_size", "8", "--num_workers", "0", "--logging_steps", "1"]


def make_synthaffect(path: Path) -> Path:
    """4 videos x 24 frames of 32x32 crops: 3 training faces (one two-person video), 1 validation, 1 test."""
    generate_synthaffect(path, num_videos=4, num_frames=24, crop_size=32, write_videos=False, seed=1)
    return path


def make_pretrained_face_mae(path: Path) -> Path:
    torch.manual_seed(0)
    FaceMAEForPreTraining(FaceMAEPreTrainingConfig(**TINY_FACE_MAE)).save_pretrained(path)
    return path


def make_feature_cache(data: Path, path: Path) -> FeatureCache:
    """A cache of random features (sizes of TINY_TMF) for every annotated video; the second video has no audio."""
    modalities = TINY_TMF["modalities"]
    cache = FeatureCache.create(path, modalities, {name: {"model": f"tiny-{name}"} for name in modalities})
    dataset = AffWild2(data)
    generator = torch.Generator().manual_seed(0)
    for number, video in enumerate(dataset.videos(["train", "validation", "test"])):
        frames = dataset.frame_table(["train", "validation", "test"], videos=[video])
        length = len(frames)
        tensors = {
            "frame": torch.arange(1, length + 1, dtype=torch.int32),
            "has_face": torch.tensor(frames["has_face"], dtype=torch.float32),
        }
        for name, size in modalities.items():
            tensors[name] = torch.randn(length, size, generator=generator)
            if name != "mae":
                tensors[f"{name}_mask"] = torch.full((length,), float(number != 1))
        cache.write_video(video, tensors)
    return cache


def make_tmf_config(path: Path) -> Path:
    """A folder with only config.json: the tmf stage builds a new TMF of this size."""
    TMFConfig(**TINY_TMF).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthaffect(tmp_path_factory.mktemp("train") / "synth")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    return make_pretrained_face_mae(tmp_path_factory.mktemp("pretrained") / "face-mae")


@pytest.fixture(scope="module")
def cache(synth, tmp_path_factory):
    return make_feature_cache(synth, tmp_path_factory.mktemp("cache") / "features")


@pytest.fixture(scope="module")
def tmf_config(tmp_path_factory):
    return make_tmf_config(tmp_path_factory.mktemp("tmf-config") / "config")


@pytest.fixture(autouse=True)
def one_thread_and_fresh_accelerate_state():
    """One intra-op thread (on small machines tiny ops are much faster so); no Accelerator state left behind."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def run(main, argv: list[str]) -> None:
    """Run a stage's main as `python -m` would, then forget its Accelerator state for the next run."""
    try:
        assert main(argv) == 0
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def check_output_folder(output: Path, model_class: str, metric: str) -> None:
    """best/ and final/ reload through AutoModel, carry eval_results.json; TensorBoard logs and history exist."""
    for name in ("best", "final"):
        model = AutoModel.from_pretrained(output / name)
        assert type(model).__name__ == model_class
        assert read_json(output / name / "config.json")["auto_map"]["AutoModel"].endswith(f".{model_class}")
        assert (output / name / "model.safetensors").is_file()
        results = read_json(output / name / "eval_results.json")
        assert {"step", "epoch", metric, "num_samples"} <= set(results)
    assert list((output / "logs").rglob("events.out.tfevents.*"))
    history = read_json(output / "history.json")
    assert history["train"] and history["eval"] and history["metric_for_best_model"] == metric
    assert all(np.isfinite(record["loss"]) for record in history["train"])
    best = max(history["eval"], key=lambda record: record[metric] * (-1 if metric == "loss" else 1))
    assert read_json(output / "best" / "eval_results.json")[metric] == best[metric]
    assert not [path.name for path in output.rglob(".*")]  # no temporary folder left behind


def test_pretrain_from_a_yaml_config(synth, tmp_path):
    config_dir = tmp_path / "tiny-config"
    FaceMAEPreTrainingConfig(**TINY_FACE_MAE).save_pretrained(config_dir)
    settings = tmp_path / "pretrain.yaml"
    settings.write_text(
        yaml.safe_dump({"data": [str(synth)], "model": str(config_dir), "num_epochs": 5, "validation_fraction": 0.1})
    )
    output = tmp_path / "out"
    run(pretrain.main, ["--config", str(settings), "--output_dir", str(output), "--num_epochs", "2", *QUICK])

    check_output_folder(output, "FaceMAEForPreTraining", "loss")
    assert AutoImageProcessor.from_pretrained(output / "final").size == {"height": 32, "width": 32}
    history = read_json(output / "history.json")
    images = len(pretrain.list_images([str(synth)]))
    steps_per_epoch = (images - round(0.1 * images)) // 8
    assert history["train"][-1]["step"] == 2 * steps_per_epoch  # --num_epochs 2 beat the file's 5
    assert history["train"][0]["learning_rate"] <= 1.5e-4 * 8 / 256  # MAE's lr = base lr x batch / 256
    checkpoints = sorted(path.name for path in (output / "checkpoints").iterdir())
    assert checkpoints == [f"step_{steps_per_epoch}", f"step_{2 * steps_per_epoch}"]  # one per epoch
    state = read_json(output / "checkpoints" / checkpoints[-1] / "training_state.json")
    assert (state["step"], state["epoch"], state["num_processes"]) == (2 * steps_per_epoch, 1, 1)


def test_finetune_learns_with_the_training_class_weights(synth, pretrained, tmp_path):
    output = tmp_path / "out"
    args = ["--data", str(synth), "--model", str(pretrained), "--output_dir", str(output), "--num_epochs", "2"]
    run(finetune.main, [*args, *QUICK, "--tasks", "au,va,expr", "--eval_steps", "3"])

    check_output_folder(output, "FaceMAEForAffect", "smoothed/score")
    config = read_json(output / "final" / "config.json")
    train_frames = AffWild2(synth).frame_table("train")
    assert config["tasks"] == ["au", "expr", "va"]
    # The MAE fine-tuning recipe's defaults reach the saved config.
    assert (config["drop_path_rate"], config["head_initializer_range"]) == (0.1, 2e-5)
    assert config["learnable_position_embeddings"] is True
    np.testing.assert_allclose(config["au_class_weight"], splits.au_class_weights(np.array(train_frames["au_labels"])))
    assert config["au_pos_weight"] == [1.0] * 12  # Eq. 1: no positive re-weighting
    np.testing.assert_allclose(config["expr_class_weight"], expr_class_weights(np.array(train_frames["expr_labels"])))
    results = read_json(output / "final" / "eval_results.json")
    validation_faces = len(FrameDataset(AffWild2(synth).frame_table("validation"), transform=None))
    assert results["num_samples"] == validation_faces
    assert {"score", "au_f1", "expr_f1", "va_ccc", "smoothed/score", "smoothed/au_f1/AU12"} <= set(results)
    evaluations = [record["step"] for record in read_json(output / "history.json")["eval"]]
    assert evaluations[:2] == [3, 6]
    assert AutoImageProcessor.from_pretrained(output / "best").size == {"height": 32, "width": 32}


def test_tmf_copies_the_cache_backbones_into_the_config(synth, cache, tmf_config, tmp_path):
    output = tmp_path / "out"
    args = ["--data", str(synth), "--features", str(cache.path), "--model", str(tmf_config)]
    args += ["--output_dir", str(output)]
    run(tmf.main, [*args, "--tasks", "expr,va", "--modalities", "mae,vggish", *QUICK, "--batch_size", "2"])

    check_output_folder(output, "TMFForAffect", "smoothed/score")
    config = read_json(output / "final" / "config.json")
    assert config["backbones"] == cache.backbones and config["modalities"] == cache.modalities
    assert config["used_modalities"] == ["mae", "vggish"] and config["tasks"] == ["expr", "va"]
    assert config["hidden_size"] == TINY_TMF["hidden_size"]
    validation_frames = len(AffWild2(synth).frame_table("validation"))
    assert read_json(output / "final" / "eval_results.json")["num_samples"] == validation_frames


# pretrain: random masks and augmentation (13 steps per epoch); tmf: dropout 0.3 (3 steps per epoch).
@pytest.mark.parametrize("stage, stop", [("pretrain", 5), ("tmf", 2)])
def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(stage, stop, synth, cache, tmf_config, tmp_path):
    if stage == "pretrain":
        main, args = pretrain.main, ["--data", str(synth), "--validation_fraction", "0.1", "--model"]
        args += [str(make_pretrained_face_mae(tmp_path / "start")), *QUICK]
    else:
        main, args = tmf.main, ["--data", str(synth), "--features", str(cache.path), "--model", str(tmf_config)]
        args += ["--tasks", "au,expr,va", *QUICK, "--batch_size", "2"]
    # 2 micro-batches per step; the run stopped by --max_steps checkpoints inside the first epoch.
    args += ["--num_epochs", "2", "--gradient_accumulation_steps", "2", "--learning_rate", "1e-3"]
    run(main, [*args, "--output_dir", str(tmp_path / "straight")])
    run(main, [*args, "--output_dir", str(tmp_path / "resumed"), "--max_steps", str(stop)])
    stopped = read_json(tmp_path / "resumed" / "checkpoints" / f"step_{stop}" / "training_state.json")
    assert stopped["step"] == stop and stopped["epoch"] == 0 and stopped["batches_in_epoch"] == 2 * stop
    run(main, [*args, "--output_dir", str(tmp_path / "resumed"), "--resume_from_checkpoint", "latest"])

    straight = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "final" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], rtol=0, atol=1e-6, msg=name)
    # The resumed history continues the checkpoint's: same steps and losses as the uninterrupted run.
    straight_history, resumed_history = (read_json(tmp_path / run / "history.json") for run in ("straight", "resumed"))
    assert [r["step"] for r in resumed_history["train"]] == [r["step"] for r in straight_history["train"]]
    np.testing.assert_allclose(
        [r["loss"] for r in resumed_history["train"]], [r["loss"] for r in straight_history["train"]], atol=1e-6
    )


def test_bad_input_is_one_clear_line(synth, pretrained, tmp_path, capsys):
    output = ["--output_dir", str(tmp_path / "out")]
    model = ["--model", str(pretrained)]
    with pytest.raises(InputError, match="no such dataset folder"):
        finetune.main(["--data", str(tmp_path / "missing"), *model, "--tasks", "au", *output])
    with pytest.raises(InputError, match="Unknown task 'pose'"):
        finetune.main(["--data", str(synth), *model, "--tasks", "au,pose", *output])
    with pytest.raises(InputError, match="--batch_size 10 must be a multiple"):
        finetune.main(
            ["--data", str(synth), *model, "--tasks", "au", "--batch_size", "10", "--gradient_accumulation_steps", "3"]
            + output
        )
    settings = tmp_path / "bad.yaml"
    settings.write_text("data: x\ntasks: au\nlearning_rat: 0.1\n")
    with pytest.raises(InputError, match="unknown setting.*learning_rat"):
        finetune.main(["--config", str(settings), *output])
    with pytest.raises(InputError, match="no checkpoint to resume from"):
        pretrain.main(["--data", str(synth), *model, *output, "--resume_from_checkpoint", "latest"])
    with pytest.raises(InputError, match="fewer than one batch of 4096"):
        pretrain.main(["--data", str(synth), *model, *output, "--num_workers", "0"])

    capsys.readouterr()
    code = abaw(["train", "finetune", "--data", str(synth), *model, "--tasks", "pose", *output])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.startswith("abaw train: error: --tasks: Unknown task 'pose'") and "\n" not in error


@pytest.mark.parametrize("stage", ["pretrain", "finetune", "tmf"])
def test_abaw_train_forwards_to_the_stage_arguments(stage, capsys):
    with pytest.raises(SystemExit) as exit_info:
        abaw(["train", stage, "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith(f"usage: abaw train {stage}")
    for flag in ("--data", "--output_dir", "--resume_from_checkpoint", "--mixed_precision", "--config"):
        assert flag in help_text
