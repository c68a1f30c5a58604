import json

import pytest
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from modeling_abaw.cli import main
from modeling_abaw.demo_report import FIGURES

# A demo that runs in seconds, for the tests that expect a rejection before anything runs (should that regress).
SMALL_DEMO = ["--videos", "5", "--frames", "40", "--model-size", "demo-tiny", "--pretrain-epochs", "1",
              "--finetune-epochs", "1", "--tmf-epochs", "1"]  # fmt: skip


def run_small_demo(output, *extra) -> int:
    return main(["demo", "--output", str(output), *SMALL_DEMO, "--num-workers", "0", *extra])


def test_demo_runs_the_whole_pipeline_end_to_end_and_twice_the_same(tmp_path, capsys):
    output = tmp_path / "demo"
    assert run_small_demo(output) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "[10/10] Writing results.md, results.json and the figures" in printed
    # Not a terminal: plain lines only, no progress-bar carriage returns or ANSI codes (a log file stays readable).
    assert "\r" not in printed + captured.err and "\x1b[" not in printed + captured.err
    for folder in ("pretrain", "finetune", "finetune_random_init", "tmf_vision_only", "tmf_audio_visual"):
        assert (output / folder / "best" / "model.safetensors").is_file()
        assert (output / folder / "history.json").is_file()
        for model_dir in (output / folder / "best", output / folder / "final"):
            # Every model folder carries its card; its model-index holds the folder's own results.
            card = ModelCard.load(model_dir / "README.md")
            assert card.data.license == "apache-2.0" and card.data.library_name == "transformers"
            _, card_results = model_index_to_eval_results(metadata_load(model_dir / "README.md")["model-index"])
            recorded = json.loads((model_dir / "eval_results.json").read_text())
            assert card_results and all(result.metric_value in recorded.values() for result in card_results)
    # The smoothing chosen on validation is stored in the models the report evaluates, with its Table 9 report.
    for folder in ("finetune", "tmf_vision_only", "tmf_audio_visual"):
        assert (output / folder / "best" / "smoothing_search.json").is_file()
    assert json.loads((output / "features" / "features.json").read_text())["modalities"] == {"mae": 96, "logmel": 64}
    results = json.loads((output / "results.json").read_text())
    assert [model["name"] for model in results["models"]] == [
        "chance level", "frame model (random init)", "frame model (MAE init)", "frame model + smoothing",
        "TMF vision-only + smoothing", "TMF audio-visual + smoothing",
    ]  # fmt: skip
    for model in results["models"]:
        metrics = model["metrics"]
        assert metrics["score"]["value"] == pytest.approx(
            metrics["au_f1"]["value"] + metrics["expr_f1"]["value"] + metrics["va_ccc"]["value"], abs=2e-4
        )
        assert all(metric["low"] <= metric["value"] <= metric["high"] for metric in metrics.values())
    assert {row["ablation"] for row in results["ablations"]} == {
        "MAE pre-training vs random init", "TMF vs frame model", "audio-visual vs vision-only TMF", "smoothing vs none",
    }  # fmt: skip
    assert "output" not in results["settings"] and results["settings"]["seed"] == 0
    durations = json.loads((output / "durations.json").read_text())
    assert list(durations)[0] == "SynthAffect" and "evaluation" in durations
    report = (output / "results.md").read_text()
    assert "sanity dataset" in report and "## Ablations" in report
    for figure in FIGURES:
        assert (output / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The same settings elsewhere: byte-identical results (durations apart, which results.json leaves out).
    assert run_small_demo(tmp_path / "again") == 0
    assert (tmp_path / "again" / "results.json").read_bytes() == (output / "results.json").read_bytes()


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
