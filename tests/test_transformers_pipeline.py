"""`transformers.pipeline` runs AffectPipeline: a model folder with the custom pipeline gives the same per-frame table
through `pipeline(model=folder, trust_remote_code=True)` as AffectPipeline."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
from transformers import pipeline

from modeling_abaw.inference import AffectPipeline
from modeling_abaw.inference.transformers_pipeline import TASK, save_custom_pipeline

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def video(tiny_synthaffect):
    return tiny_synthaffect / "videos" / "synth_002.mp4"


def with_pipeline(model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    save_custom_pipeline(folder)
    return folder


@pytest.mark.parametrize("model_fixture", ["tiny_face_mae_affect_dir", "tiny_tmf_dir"])
def test_remote_code_pipeline_gives_the_affect_pipelines_table(model_fixture, request, video, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    folder = with_pipeline(request.getfixturevalue(model_fixture), tmp_path)
    analyse = pipeline(model=str(folder), trust_remote_code=True, device="cpu")
    assert analyse.task == TASK
    expected = AffectPipeline.from_pretrained(folder, device="cpu", dtype="float32")(video)
    pd.testing.assert_frame_equal(analyse(str(video)), expected, check_exact=False, atol=1e-5)
    # AffectPipeline's options are the pipeline's call keywords.
    unsmoothed = AffectPipeline.from_pretrained(folder, device="cpu", dtype="float32", smoothing="none")(video)
    pd.testing.assert_frame_equal(analyse(str(video), smoothing="none"), unsmoothed, check_exact=False, atol=1e-5)
    with pytest.raises(TypeError, match="unknown option"):
        analyse(str(video), smooth="none")


def test_registered_task_runs_a_folder_without_the_custom_pipeline(tiny_face_mae_affect_dir, video):
    analyse = pipeline(TASK, model=tiny_face_mae_affect_dir, device="cpu")  # no remote code involved
    assert type(analyse.model).__module__ == "modeling_abaw.modeling_face_mae"
    table = analyse(str(video), crop_batch_size=4)
    assert len(table) == 40 and table["has_face"].any()


PIPELINE_FROM_HUB = """
import sys
from transformers import pipeline
model, video, revision = sys.argv[1], sys.argv[2], (sys.argv[3:] or [None])[0]
table = pipeline(model=model, revision=revision, trust_remote_code=True, device="cpu")(video, smoothing="none")
table.to_csv("table.csv", index=False)
"""
# What transformers (5.25 and later) prints for remote code loaded without a pinned revision.
UNPINNED_CODE_WARNING = "A new version of the following files was downloaded"


@pytest.mark.smoke
def test_a_pushed_folder_runs_as_a_pipeline_from_the_hub(loopback_hub, tiny_face_mae_affect_dir, video, tmp_path):
    folder = with_pipeline(tiny_face_mae_affect_dir, tmp_path)
    (folder / "eval_results.json").write_text('{"au_f1": 0.5, "expr_f1": 0.4, "va_ccc": 0.3}')  # a card needs results
    pushed = loopback_hub.run_client(
        [str(REPOSITORY / "hub_scripts" / "push_to_hub.py"), "--model", str(folder), "--repo-id", "org/affect"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPOSITORY)},
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "transformers_pipeline.py" in loopback_hub.commits("org/affect")[-1].files
    (tmp_path / "client.py").write_text(PIPELINE_FROM_HUB)
    # Pinned to the pushed commit, as the model card advises for remote code: no warning about new code files.
    commit = loopback_hub.commits("org/affect")[-1].oid
    loaded = loopback_hub.run_client(
        ["client.py", "org/affect", str(video), commit], cwd=tmp_path, env={"PYTHONPATH": str(REPOSITORY)}
    )
    assert loaded.returncode == 0, loaded.stderr
    assert UNPINNED_CODE_WARNING not in loaded.stderr
    expected = AffectPipeline.from_pretrained(folder, device="cpu", dtype="float32", smoothing="none")(video)
    table = pd.read_csv(tmp_path / "table.csv")
    pd.testing.assert_frame_equal(table, expected, check_exact=False, atol=1e-5, check_dtype=False)
