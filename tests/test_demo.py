import json

from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from modeling_abaw.cli import main

# A demo that runs in seconds, for the tests that expect a rejection before anything runs (should that regress).
SMALL_DEMO = ["--videos", "5", "--frames", "40", "--model-size", "demo-tiny", "--pretrain-epochs", "1",
              "--finetune-epochs", "1", "--tmf-epochs", "1"]  # fmt: skip


def test_demo_runs_the_whole_pipeline_end_to_end(tmp_path, capsys):
    output = tmp_path / "demo"
    status = main(
        ["demo", "--output", str(output), "--videos", "5", "--frames", "40", "--model-size", "demo-tiny",
         "--pretrain-epochs", "1", "--finetune-epochs", "1", "--tmf-epochs", "1", "--num-workers", "0"]
    )  # fmt: skip
    assert status == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "[7/7] Writing the results table and figures" in printed
    # Not a terminal: plain lines only, no progress-bar carriage returns or ANSI codes (a log file stays readable).
    assert "\r" not in printed + captured.err and "\x1b[" not in printed + captured.err
    for folder in ("pretrain", "finetune", "tmf_vision_only", "tmf_audio_visual"):
        assert (output / folder / "best" / "model.safetensors").is_file()
        assert (output / folder / "history.json").is_file()
        for model_dir in (output / folder / "best", output / folder / "final"):
            # Every model folder carries its card; its model-index holds the folder's own results.
            card = ModelCard.load(model_dir / "README.md")
            assert card.data.license == "apache-2.0" and card.data.library_name == "transformers"
            _, card_results = model_index_to_eval_results(metadata_load(model_dir / "README.md")["model-index"])
            recorded = json.loads((model_dir / "eval_results.json").read_text())
            assert card_results and all(result.metric_value in recorded.values() for result in card_results)
    assert json.loads((output / "features" / "features.json").read_text())["modalities"] == {"mae": 96, "logmel": 64}
    results = json.loads((output / "results.json").read_text())
    assert list(results) == [
        "chance level", "frame model (FaceMAE)", "frame model + smoothing", "TMF vision-only + smoothing",
        "TMF vision-only (raw)", "TMF audio-visual + smoothing", "TMF audio-visual (raw)",
    ]  # fmt: skip
    for scores in results.values():
        assert set(scores) >= {"au_f1", "expr_f1", "va_ccc", "score"}
        assert abs(scores["au_f1"] + scores["expr_f1"] + scores["va_ccc"] - scores["score"]) < 1e-9
    table = (output / "results.md").read_text()
    assert "sanity dataset" in table and table.count("\n| ") == len(results) + 1
    for figure in ("training_curves.png", "scores.png"):
        assert (output / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_rejects_too_few_videos(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--videos", "2"]) == 2
    assert "--videos must be at least 4" in capsys.readouterr().err


def test_demo_rejects_negative_workers(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), *SMALL_DEMO, "--num-workers", "-1"]) == 2
    assert "--num-workers must be at least 0" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # rejected before generating anything


def test_demo_rejects_an_unavailable_device_in_one_line(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path / "demo"), *SMALL_DEMO, "--device", "no-such-device"]) == 2
    assert capsys.readouterr().err.startswith("abaw demo: error: device 'no-such-device'")
    assert not (tmp_path / "demo").exists()  # rejected before generating anything
