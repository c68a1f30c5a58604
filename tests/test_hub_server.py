"""The loopback Hub (tests/hub_server.py) against the real clients: huggingface_hub uploads (regular files inline,
safetensors through LFS), tags, downloads, a dataset repo `datasets.load_dataset` reads, and the checks it makes
(token, card YAML)."""

import json

import pytest

CLIENT = """
import json, os, sys
import pandas as pd
import torch
from huggingface_hub import HfApi, snapshot_download
from safetensors.torch import load_file, save_file

api = HfApi()
os.makedirs("model/logs", exist_ok=True)
save_file({"weight": torch.arange(6.0).reshape(2, 3)}, "model/model.safetensors")
open("model/config.json", "w").write(json.dumps({"model_type": "face_mae"}))
open("model/logs/events.txt", "w").write("step 1")
open("model/README.md", "w").write("---\\nlicense: apache-2.0\\n---\\n# A model\\n")
url = api.create_repo("org/model", private=True)
api.create_repo("org/model", exist_ok=True)
commit = api.upload_folder(repo_id="org/model", folder_path="model", commit_message="Upload the model")
api.create_tag("org/model", tag="v0.1")
api.create_branch("org/model", branch="dev")
api.upload_file(repo_id="org/model", path_or_fileobj=b"on dev", path_in_repo="dev.txt", revision="dev")
snapshot = snapshot_download("org/model", revision="v0.1")
weights = load_file(os.path.join(snapshot, "model.safetensors"))["weight"].tolist()

os.makedirs("dataset/data", exist_ok=True)
pd.DataFrame({"frame": [0, 1, 2], "label": ["a", "b", "c"]}).to_parquet("dataset/data/train-00000-of-00001.parquet")
open("dataset/README.md", "w").write("---\\nlicense: cc-by-4.0\\n---\\n# A dataset\\n")
api.create_repo("org/dataset", repo_type="dataset")
api.upload_folder(repo_id="org/dataset", repo_type="dataset", folder_path="dataset")
import datasets
train = datasets.load_dataset("org/dataset", split="train")
print(json.dumps({"url": url, "repo_id": url.repo_id, "commit": commit.oid, "weights": weights,
                  "files": sorted(os.path.relpath(os.path.join(d, f), snapshot) for d, _, fs in os.walk(snapshot)
                                  for f in fs),
                  "rows": train.to_dict()}))
"""


def test_real_clients_push_and_download_models_and_datasets(loopback_hub, tmp_path):
    (tmp_path / "client.py").write_text(CLIENT)
    result = loopback_hub.run_client(["client.py"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])

    assert report["repo_id"] == "org/model" and report["url"] == f"{loopback_hub.endpoint}/org/model"
    commit = loopback_hub.repo("org/model").resolve("main")
    assert report["commit"] == commit.oid and commit.summary == "Upload the model"
    modes = {op["value"]["path"]: op["key"] for op in commit.operations}
    assert modes == {
        "model.safetensors": "lfsFile",
        "config.json": "file",
        "logs/events.txt": "file",
        "README.md": "file",
    }
    assert loopback_hub.repo("org/model").private
    assert loopback_hub.repo("org/model").tags == {"v0.1": commit.oid}
    assert loopback_hub.read("org/model", "dev.txt", revision="dev") == b"on dev"
    assert "dev.txt" not in commit.files  # main is where it was
    assert report["weights"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert report["files"] == [".gitattributes", "README.md", "config.json", "logs/events.txt", "model.safetensors"]
    assert ("PUT", f"/lfs-upload/{commit.files['model.safetensors'].sha256}") in loopback_hub.requests

    assert report["rows"] == {"frame": [0, 1, 2], "label": ["a", "b", "c"]}
    dataset_commit = loopback_hub.commits("org/dataset", repo_type="dataset")[-1]
    assert dataset_commit.files["data/train-00000-of-00001.parquet"].lfs


WRITE_WITHOUT_TOKEN = """
from huggingface_hub import HfApi
HfApi().create_repo("org/model")
"""


def test_requests_without_the_token_are_rejected(loopback_hub, tmp_path):
    (tmp_path / "client.py").write_text(WRITE_WITHOUT_TOKEN)
    result = loopback_hub.run_client(["client.py"], cwd=tmp_path, token=None)
    assert result.returncode != 0 and "401" in result.stderr
    assert not loopback_hub.repos


@pytest.mark.parametrize(
    "metadata, error",
    [
        ("license: not-a-licence", "must be one of"),
        ("license: other", "license_name"),
        ("model-index:\n- name: m\n  results:\n  - task: {}\n", "model-index"),
        ("license: [unclosed", "Invalid YAML"),
    ],
)
def test_validate_yaml_rejects_what_the_hub_rejects(metadata, error):
    from hub_server import LoopbackHub

    assert any(error in message for message in LoopbackHub.card_errors(f"---\n{metadata}\n---\n# Card\n", "model"))


def test_validate_yaml_accepts_a_valid_card():
    from hub_server import LoopbackHub

    card = """---
license: other
license_name: aff-wild2-academic
model-index:
- name: m
  results:
  - task: {type: video-classification}
    dataset: {name: Aff-Wild2, type: aff-wild2, split: validation}
    metrics:
    - {type: f1, value: 0.5, name: AU mean F1}
---
"""
    assert LoopbackHub.card_errors(card, "model") == []


INVALID_CARD_UPLOAD = """
import os
from huggingface_hub import HfApi
os.makedirs("model")
open("model/README.md", "w").write("---\\nlicense: my-own-licence\\n---\\n")
HfApi().create_repo("org/model")
HfApi().upload_folder(repo_id="org/model", folder_path="model")
"""


def test_an_upload_whose_card_the_server_rejects_fails_before_any_commit(loopback_hub, tmp_path):
    (tmp_path / "client.py").write_text(INVALID_CARD_UPLOAD)
    result = loopback_hub.run_client(["client.py"], cwd=tmp_path)
    assert result.returncode != 0 and "my-own-licence" in result.stderr
    assert [commit.summary for commit in loopback_hub.commits("org/model")] == ["initial commit"]
