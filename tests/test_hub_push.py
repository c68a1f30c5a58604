"""`hub_scripts/push_to_hub.py` / `abaw push` and `--push_to_hub` against the loopback Hub (tests/hub_server.py):
what the commit received, the reload from the server with remote code in a Python without the package, and the
one-line failures."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_FACE_MAE

from modeling_abaw import (
    FaceMAEConfig,
    FaceMAEForAffect,
    FaceMAEForPreTraining,
    FaceMAEPreTrainingConfig,
    TMFConfig,
    TMFForAffect,
)
from modeling_abaw.cli import main as abaw
from modeling_abaw.data.synth import generate_synthaffect
from modeling_abaw.hub.publish import load_with_remote_code

REPO = Path(__file__).resolve().parents[1]
PUSH_SCRIPT = REPO / "hub_scripts" / "push_to_hub.py"
AFFECT_RESULTS = {
    "step": 1,
    "loss": 1.0,
    "au_f1": 0.41,
    "expr_f1": 0.32,
    "va_ccc": 0.23,
    "smoothed/au_f1": 0.45,
    "smoothed/expr_f1": 0.36,
    "smoothed/va_ccc": 0.27,
}


def save_run(model, run: Path, results: dict) -> Path:
    """A training run's folder as the stages write it: best/ (with eval_results.json), history.json, logs/."""
    best = run / "best"
    model.save_pretrained(best)
    (best / "eval_results.json").write_text(json.dumps(results))
    (run / "history.json").write_text(json.dumps({"train": [], "eval": [results]}))
    (run / "logs").mkdir()
    (run / "logs" / "events.out.tfevents.1").write_bytes(b"\0tensorboard")
    return best


@pytest.fixture(scope="module")
def affect_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = FaceMAEForAffect(FaceMAEConfig(**TINY_FACE_MAE))
    return save_run(model, tmp_path_factory.mktemp("finetune-run"), AFFECT_RESULTS)


@pytest.fixture(scope="module")
def pretraining_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = FaceMAEForPreTraining(FaceMAEPreTrainingConfig(**TINY_FACE_MAE))
    return save_run(model, tmp_path_factory.mktemp("pretrain-run"), {"step": 1, "loss": 0.5})


@pytest.fixture(scope="module")
def tmf_dir(tmp_path_factory, affect_dir, tiny_hubert_dir, tiny_vggish_dir):
    """A TMF (EXPR, VA) whose three backbones are local folders."""
    torch.manual_seed(1)
    config = TMFConfig(
        modalities={"mae": 32, "hubert": 16, "vggish": 8},
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        clip_length=12,
        tasks=["expr", "va"],
        backbones={
            "mae": {"model": str(affect_dir)},
            "hubert": {"model": tiny_hubert_dir, "layer": 1},
            "vggish": {"model": tiny_vggish_dir},
        },
    )
    results = {k: v for k, v in AFFECT_RESULTS.items() if "au" not in k}
    return save_run(TMFForAffect(config), tmp_path_factory.mktemp("tmf-run"), results)


def push(hub, cwd: Path, *arguments: str, token: str | None = "default"):
    """The real push script in a subprocess talking to `hub`."""
    options = {} if token == "default" else {"token": token}
    return hub.run_client([str(PUSH_SCRIPT), *arguments], cwd=cwd, env={"PYTHONPATH": str(REPO)}, **options)


def reload_from_hub(hub, cwd: Path, repo_id: str, inputs: dict):
    """`AutoModel.from_pretrained(repo_id, trust_remote_code=True)` through the server, without the package."""
    return load_with_remote_code(repo_id, inputs, env=hub.client_env(cwd / "reload-home"))


def card_metadata(hub, repo_id: str) -> dict:
    card = hub.read(repo_id, "README.md").decode()
    return yaml.safe_load(card.split("---\n")[1])


def local_outputs(model_class, folder: Path, inputs: dict) -> dict:
    model = model_class.from_pretrained(folder).eval()
    with torch.no_grad():
        return {key: value for key, value in model(**inputs).items() if isinstance(value, torch.Tensor)}


def face_inputs(noise: bool = False) -> dict:
    generator = torch.Generator().manual_seed(0)
    inputs = {"pixel_values": torch.randn(2, 3, 32, 32, generator=generator)}
    if noise:  # fixes the MAE's random masking
        inputs["noise"] = torch.rand(2, 16, generator=generator)
    return inputs


@pytest.mark.parametrize(
    "folder, model_class, inputs",
    [("affect_dir", FaceMAEForAffect, face_inputs()), ("pretraining_dir", FaceMAEForPreTraining, face_inputs(True))],
)
def test_push_script_commits_the_folder_and_the_hub_copy_loads_without_the_package(
    loopback_hub, tmp_path, request, folder, model_class, inputs
):
    folder = request.getfixturevalue(folder)
    result = push(
        loopback_hub, tmp_path, "--model", str(folder), "--repo-id", "org/face-mae", "--tag", "v0.1", "--logs"
    )
    assert result.returncode == 0, result.stderr

    commit = loopback_hub.commits("org/face-mae")[-1]
    modes = {op["value"]["path"]: op["key"] for op in commit.operations}
    assert modes["model.safetensors"] == "lfsFile"  # through the LFS batch API and a PUT
    assert ("PUT", f"/lfs-upload/{commit.files['model.safetensors'].sha256}") in loopback_hub.requests
    assert {"config.json", "README.md", "LICENSE.md", "eval_results.json", "history.json"} <= set(modes)
    assert "logs/events.out.tfevents.1" in modes and any(name.startswith("modeling_") for name in modes)
    assert len(loopback_hub.commits("org/face-mae")) == 2  # the repo's first commit, then exactly one upload
    assert loopback_hub.repo("org/face-mae").tags == {"v0.1": commit.oid}
    config = json.loads(loopback_hub.read("org/face-mae", "config.json"))
    assert "AutoModel" in config["auto_map"]
    metadata = card_metadata(loopback_hub, "org/face-mae")
    assert metadata["library_name"] == "transformers" and metadata["model-index"]
    assert json.loads(loopback_hub.read("org/face-mae", "eval_results.json")) == json.loads(
        (folder / "eval_results.json").read_text()
    )
    assert f"pushed {folder}" in result.stdout

    reloaded = reload_from_hub(loopback_hub, tmp_path, "org/face-mae", inputs)
    assert reloaded.class_name == model_class.__name__ and reloaded.module.startswith("transformers_modules.")
    expected = local_outputs(model_class, folder, inputs)
    assert expected.keys() == reloaded.outputs.keys()
    for key, value in expected.items():
        torch.testing.assert_close(reloaded.outputs[key], value)


AFFECT_PIPELINE_FROM_HUB = """
import sys, json
from modeling_abaw.inference import AffectPipeline
pipeline = AffectPipeline.from_pretrained(sys.argv[1], device="cpu")
print(json.dumps({"model": type(pipeline.model).__name__, "visual": type(pipeline.visual_model).__name__,
                  "audio": sorted(pipeline.audio_extractors)}))
"""


def test_tmf_pushes_its_backbones_first_and_resolves_everything_from_the_hub(loopback_hub, tmp_path, tmf_dir):
    local_config = (tmf_dir / "config.json").read_text()
    result = push(
        loopback_hub, tmp_path, "--model", str(tmf_dir), "--repo-id", "org/tmf", "--push-backbones", "org/tmf"
    )
    assert result.returncode == 0, result.stderr

    backbones = json.loads(loopback_hub.read("org/tmf", "config.json"))["backbones"]
    assert backbones == {
        "mae": {"model": "org/tmf-mae"},
        "hubert": {"model": "org/tmf-hubert", "layer": 1},
        "vggish": {"model": "org/tmf-vggish"},
    }
    assert (tmf_dir / "config.json").read_text() == local_config  # the local folder is untouched
    for name in backbones:
        assert loopback_hub.read(f"org/tmf-{name}", "README.md")  # each backbone: its own folder, card, commit
        assert len(loopback_hub.commits(f"org/tmf-{name}")) == 2
    assert card_metadata(loopback_hub, "org/tmf")["base_model"] == "org/tmf-mae"

    inputs = {"mae": torch.randn(1, 12, 32), "hubert": torch.randn(1, 12, 16), "vggish": torch.randn(1, 12, 8)}
    reloaded = reload_from_hub(loopback_hub, tmp_path, "org/tmf", {"features": inputs})
    expected = local_outputs(TMFForAffect, tmf_dir, {"features": inputs})
    for key, value in expected.items():
        torch.testing.assert_close(reloaded.outputs[key], value)

    (tmp_path / "pipeline.py").write_text(AFFECT_PIPELINE_FROM_HUB)
    loaded = loopback_hub.run_client(["pipeline.py", "org/tmf"], cwd=tmp_path, env={"PYTHONPATH": str(REPO)})
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout.splitlines()[-1]) == {
        "model": "TMFForAffect",
        "visual": "FaceMAEForAffect",
        "audio": ["hubert", "vggish"],
    }


def test_dry_run_leaves_exactly_the_folder_and_pushes_nothing(loopback_hub, affect_dir, tmp_path, capsys):
    out = tmp_path / "upload"
    assert abaw(["push", "--model", str(affect_dir), "--repo-id", "org/face-mae", "--dry-run", str(out)]) == 0
    files = sorted(str(path.relative_to(out)) for path in out.rglob("*") if path.is_file())
    weights_and_code = [name for name in files if name.endswith((".py", ".safetensors"))]
    assert files == sorted(
        [
            "LICENSE.md",
            "README.md",
            "config.json",
            "eval_results.json",
            "history.json",
            "preprocessor_config.json",
            *weights_and_code,
        ]
    )
    assert "model.safetensors" in weights_and_code
    assert "nothing pushed" in capsys.readouterr().out
    assert loopback_hub.requests == []


def test_tmf_with_local_backbones_and_no_hub_ids_is_refused(tmf_dir, tmp_path, capsys):
    code = abaw(["push", "--model", str(tmf_dir), "--repo-id", "org/tmf", "--dry-run", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1
    assert "local backbones" in error and "--push-backbones" in error and "mae=" in error
    assert not (tmp_path / "out").exists()


def test_tmf_backbones_given_by_id_are_written_into_the_config(tmf_dir, tmp_path):
    ids = ["--backbone", "mae=org/mae", "--backbone", "hubert=facebook/hubert-base-ls960", "--backbone", "vggish=o/v"]
    out = tmp_path / "out"
    assert abaw(["push", "--model", str(tmf_dir), "--repo-id", "org/tmf", *ids, "--dry-run", str(out)]) == 0
    backbones = json.loads((out / "config.json").read_text())["backbones"]
    assert {name: spec["model"] for name, spec in backbones.items()} == {
        "mae": "org/mae",
        "hubert": "facebook/hubert-base-ls960",
        "vggish": "o/v",
    }


def test_push_without_a_token_fails_in_one_line(loopback_hub, affect_dir, tmp_path):
    result = push(loopback_hub, tmp_path, "--model", str(affect_dir), "--repo-id", "org/face-mae", token=None)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "abaw push: error: no Hugging Face token: set HF_TOKEN or run `hf auth login`"
    ]
    assert not loopback_hub.repos


def test_push_refuses_a_repo_holding_another_model_type(loopback_hub, affect_dir, pretraining_dir, tmp_path):
    assert push(loopback_hub, tmp_path, "--model", str(affect_dir), "--repo-id", "org/model").returncode == 0
    result = push(loopback_hub, tmp_path, "--model", str(pretraining_dir), "--repo-id", "org/model")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "abaw push: error: org/model already holds a 'face_mae' model; this is a 'face_mae_pretraining' model "
        "(use another repo)"
    ]
    assert len(loopback_hub.commits("org/model")) == 2  # nothing more was committed


def test_push_to_an_unreachable_endpoint_fails_in_one_line(loopback_hub, affect_dir, tmp_path):
    loopback_hub.stop()  # the port is closed: connection refused
    result = push(loopback_hub, tmp_path, "--model", str(affect_dir), "--repo-id", "org/face-mae")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert lines[0].startswith("abaw push: error: token check: cannot reach the Hugging Face Hub at http://127.0.0.1:")
    assert "pushed" not in result.stdout


def test_a_card_the_hub_rejects_is_never_committed(loopback_hub, affect_dir, tmp_path):
    result = push(loopback_hub, tmp_path, "--model", str(affect_dir), "--repo-id", "org/m", "--license", "my-licence")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert "Invalid metadata in README.md" in lines[0] and "my-licence" in lines[0]
    assert [commit.summary for commit in loopback_hub.commits("org/m")] == ["initial commit"]
    assert "pushed" not in result.stdout


def test_finetune_push_to_hub_ends_with_the_model_on_the_hub(loopback_hub, tmp_path, pretraining_dir):
    data = tmp_path / "synth"
    generate_synthaffect(data, num_videos=4, num_frames=24, crop_size=32, write_videos=False, seed=1)
    output = tmp_path / "run"
    arguments = [
        "--data",
        str(data),
        "--model",
        str(pretraining_dir),
        "--tasks",
        "expr",
        "--output_dir",
        str(output),
        "--max_steps",
        "1",
        "--batch_size",
        "4",
        "--num_workers",
        "0",
        "--push_to_hub",
        "--hub_model_id",
        "org/finetuned",
    ]
    result = loopback_hub.run_client(
        ["-m", "modeling_abaw.cli", "train", "finetune", *arguments], cwd=tmp_path, env={"PYTHONPATH": str(REPO)}
    )
    assert result.returncode == 0, result.stderr
    commit = loopback_hub.commits("org/finetuned")[-1]
    assert commit.files["model.safetensors"].lfs
    pushed = loopback_hub.read("org/finetuned", "model.safetensors")
    assert pushed == (output / "best" / "model.safetensors").read_bytes()
    assert "history.json" in commit.files and any(path.startswith("logs/") for path in commit.files)
    assert (output / "best").is_dir() and (output / "final").is_dir()
