"""Cross-validation (paper Tables 1-3): the folds of the affect stages, the fold table, `abaw cross-validate` and
`abaw fold-table`."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from test_train import QUICK, make_pretrained_face_mae, make_synthaffect

from modeling_abaw.cli import main as abaw
from modeling_abaw.data import AffWild2, raw_video_name
from modeling_abaw.data.synth import generate_synthaffect
from modeling_abaw.errors import InputError
from modeling_abaw.folds import fold_tables, read_fold_histories, write_fold_table
from modeling_abaw.tasks import VA
from modeling_abaw.train import finetune
from modeling_abaw.train.labels import training_and_validation_frames


@pytest.fixture(scope="module")
def many_videos(tmp_path_factory):
    """SynthAffect with 7 raw training videos (one of two persons) and 2 validation videos, 6 frames each."""
    path = tmp_path_factory.mktemp("folds") / "synth"
    generate_synthaffect(path, num_videos=10, num_frames=6, crop_size=32, write_videos=False, seed=1)
    return path


@pytest.mark.parametrize("tasks", [["au"], ["au", "expr"]])
def test_the_folds_partition_the_labelled_train_and_validation_videos(many_videos, tasks):
    data = AffWild2(many_videos)
    labelled = set(data.videos(["train", "validation"], tasks))
    validation_folds = []
    for fold in (1, 2, 3):
        train_frames, eval_frames, note = training_and_validation_frames(data, tasks, fold, 3, fold_seed=0)
        train_videos, eval_videos = set(train_frames["video"]), set(eval_frames["video"])
        assert not train_videos & eval_videos and train_videos | eval_videos == labelled
        assert note == f"Fold {fold} of 3 (seed 0): {len(train_videos)} training, {len(eval_videos)} validation videos"
        validation_folds.append(eval_videos)
        # The frame tables hold every annotated frame of their videos, with the labels of both splits' files.
        assert len(eval_frames) == len(data.frame_table(["train", "validation"], tasks, videos=eval_videos))
    assert sum(len(videos) for videos in validation_folds) == len(labelled)  # no video in two folds
    assert set().union(*validation_folds) == labelled
    for videos in validation_folds:  # the two persons of a raw video are in one fold
        assert {"synth_005_left", "synth_005_right"} <= videos or not {"synth_005_left", "synth_005_right"} & videos
        groups = {raw_video_name(video) for video in videos}
        assert all(raw_video_name(video) in groups for video in labelled if raw_video_name(video) in groups)
    again = [set(training_and_validation_frames(data, tasks, 1, 3, fold_seed=0)[1]["video"])]
    assert again[0] == validation_folds[0]
    other_seeds = [set(training_and_validation_frames(data, tasks, 1, 3, seed)[1]["video"]) for seed in (1, 2, 3)]
    assert any(videos != validation_folds[0] for videos in other_seeds)


def test_more_folds_than_raw_videos_is_one_clear_error(many_videos):
    with pytest.raises(InputError, match=r"--num_folds 9: k-fold needs 2 <= k <= 8"):
        training_and_validation_frames(AffWild2(many_videos), ["au"], 1, 9)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--fold", "0"], "--fold must be 'official' or a fold number 1..5 (--num_folds), got '0'"),
        (["--fold", "7", "--num_folds", "5"], "--fold must be 'official' or a fold number 1..5 (--num_folds), got '7'"),
        (["--fold", "x"], "--fold must be 'official' or a fold number 1..5 (--num_folds), got 'x'"),
        (["--num_folds", "1"], "--num_folds must be at least 2, got 1"),
    ],
)
def test_bad_fold_flags_are_one_line(tmp_path, flags, message):
    arguments = ["--data", "d", "--model", "m", "--tasks", "au", "--output_dir", str(tmp_path), *flags]
    with pytest.raises(InputError) as error:
        finetune.main(arguments)
    assert str(error.value) == message


def test_the_fold_flags_parse(tmp_path):
    common = ["--data", "d", "--model", "m", "--tasks", "au", "--output_dir", str(tmp_path)]
    args = finetune.parse_arguments(finetune.FinetuneArguments, [*common, "--fold", "3", "--fold_seed", "4"])
    assert (args.fold_number, args.num_folds, args.fold_seed) == (3, 5, 4)
    assert finetune.parse_arguments(finetune.FinetuneArguments, common).fold_number is None  # official


# -- the table ---------------------------------------------------------------------------------------------------------


def write_run(directory: Path, name: str, evaluations: list[dict], best_step: int | None, **split) -> None:
    """A hand-made history.json of a VA run, as train/loop.py writes it."""
    tasks = split.pop("tasks", ["va"])
    fold = split.pop("fold", "official" if name == "official" else int(name.split("_")[1]))
    record = {"fold": fold, "num_folds": 3, "fold_seed": 0, "validation_videos": [f"video_{name}"], **split}
    history = {"metric_for_best_model": "smoothed/score", "best_step": best_step, "tasks": tasks}
    history.update(split=record, train=[], eval=evaluations)
    (directory / name).mkdir(parents=True, exist_ok=True)
    (directory / name / "history.json").write_text(json.dumps(history))


def va_evaluation(step: int, valence: float, arousal: float, smoothing_gain: float = 0.1) -> dict:
    raw = {"va_ccc/valence": valence, "va_ccc/arousal": arousal, "va_ccc": (valence + arousal) / 2}
    smoothed = {f"smoothed/{key}": value + smoothing_gain for key, value in raw.items()}
    return {"step": step, "epoch": 1.0, "num_samples": 10, **raw, "score": raw["va_ccc"], **smoothed}


@pytest.fixture
def runs(tmp_path):
    """The official run and 3 folds; each run's best evaluation is not its last one."""
    values = {"official": (0.5, 0.3), "fold_1": (0.6, 0.2), "fold_2": (0.4, 0.4), "fold_3": (0.2, 0.9)}
    for name, (valence, arousal) in values.items():
        write_run(tmp_path, name, [va_evaluation(5, valence, arousal), va_evaluation(10, 0.0, 0.0)], best_step=5)
    return tmp_path


def test_the_fold_table_numbers_and_marks(runs):
    (table,) = fold_tables(read_fold_histories(runs))
    assert table.columns == ["va_ccc/valence", "va_ccc/arousal", "va_ccc"]
    assert table.headers == [*VA.labels, "va_ccc"]
    assert table.values["fold_3"] == pytest.approx([0.2, 0.9, 0.55])  # the evaluation at best_step, not the last
    folds = np.array([[0.6, 0.2, 0.4], [0.4, 0.4, 0.4], [0.2, 0.9, 0.55]])
    assert table.mean == pytest.approx(folds.mean(0).tolist())  # the official split is not in the mean
    assert table.std == pytest.approx(folds.std(0, ddof=1).tolist())
    assert table.best == ["fold_1", "fold_3", "fold_3"] and table.worst == ["fold_3", "fold_1", "official"]

    paths, markdown = write_fold_table(runs)
    assert [path.name for path in paths] == ["folds.md", "folds.json", "folds.png"]
    assert all(path.is_file() and path.stat().st_size for path in paths)
    assert (runs / "folds.md").read_text() == markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert rows[0] == "| split | valence | arousal | va_ccc |"
    assert rows[1:] == [
        "| official | 0.500 | 0.300 | _0.400_ |",
        "| fold 1 | **0.600** | _0.200_ | 0.400 |",
        "| fold 2 | 0.400 | 0.400 | 0.400 |",
        "| fold 3 | _0.200_ | **0.900** | **0.550** |",
        f"| mean ± std (3 folds) | 0.400 ± 0.200 | 0.500 ± {folds.std(0, ddof=1)[1]:.3f} | 0.450 ± 0.087 |",
    ]
    assert "raw (no smoothing)" in markdown and "**Bold**: the best split" in markdown

    results = json.loads((runs / "folds.json").read_text())
    assert results["smoothed"] is False and (results["num_folds"], results["fold_seed"]) == (3, 0)
    assert list(results["splits"]) == ["official", "fold_1", "fold_2", "fold_3"]
    assert results["splits"]["fold_2"] == {"step": 5, "validation_videos": ["video_fold_2"]}
    va = results["tables"]["va"]
    assert va["values"]["fold_1"] == pytest.approx({"va_ccc/valence": 0.6, "va_ccc/arousal": 0.2, "va_ccc": 0.4})
    assert va["mean"] == pytest.approx(dict(zip(table.columns, table.mean)))
    assert va["std"] == pytest.approx(dict(zip(table.columns, table.std)))
    assert va["best"]["va_ccc"] == "fold_3" and va["worst"]["va_ccc"] == "official"


def test_the_smoothed_fold_table(runs):
    raw, smoothed = (fold_tables(read_fold_histories(runs), smoothed)[0] for smoothed in (False, True))
    assert smoothed.values["official"] == pytest.approx([value + 0.1 for value in raw.values["official"]])
    _, markdown = write_fold_table(runs, smoothed=True)
    assert "after the model's smoothing policy" in markdown and "| official | 0.600 | 0.400 | _0.500_ |" in markdown
    assert json.loads((runs / "folds.json").read_text())["smoothed"] is True


def test_a_tie_marks_nothing_and_the_official_run_is_optional(tmp_path):
    for name in ("fold_1", "fold_2", "fold_3"):
        write_run(tmp_path, name, [va_evaluation(1, 0.5, 0.5)], best_step=1)
    (table,) = fold_tables(read_fold_histories(tmp_path))
    assert list(table.values) == ["fold_1", "fold_2", "fold_3"]
    assert table.best == [None] * 3 and table.worst == [None] * 3
    assert "**" not in write_fold_table(tmp_path)[1].split("**Bold**")[0]


def test_a_folder_without_runs(tmp_path):
    with pytest.raises(InputError, match=r"no runs \(official/ or fold_<i>/ folders with a history.json\)"):
        read_fold_histories(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: write_run(d, "fold_3", [va_evaluation(1, 0, 0)], 1, num_folds=4), "different --num_folds"),
        (lambda d: write_run(d, "fold_3", [va_evaluation(1, 0, 0)], 1, fold_seed=1), "different --num_folds"),
        (lambda d: write_run(d, "fold_3", [va_evaluation(1, 0, 0)], 1, tasks=["au"]), "different tasks (au; va)"),
        (lambda d: write_run(d, "fold_3", [], None), "fold_3/history.json: no evaluation of a best model"),
        (lambda d: write_run(d, "fold_3", [va_evaluation(1, 0, 0)], 1, fold=2), "a run of --fold 2, in the folder"),
        (lambda d: (d / "fold_3").mkdir(), "fold_3: no history.json (not trained yet?)"),
        (lambda d: write_run(d, "official", [va_evaluation(1, 0, 0)], 1), "the runs have 3 folds, missing fold_3"),
    ],
)
def test_fold_table_errors(tmp_path, change, message):
    for name in ("fold_1", "fold_2"):
        write_run(tmp_path, name, [va_evaluation(1, 0.5, 0.5)], best_step=1)
    change(tmp_path)
    with pytest.raises(InputError, match=re.escape(message)):
        read_fold_histories(tmp_path)


def test_abaw_fold_table(runs, capsys):
    assert abaw(["fold-table", str(runs), "--smoothed"]) == 0
    assert "Wrote " in capsys.readouterr().out and (runs / "folds.png").is_file()
    assert abaw(["fold-table", str(runs / "nothing")]) == 2
    assert capsys.readouterr().err == f"abaw fold-table: error: {runs / 'nothing'}: no such folder\n"


# -- abaw cross-validate ----------------------------------------------------------------------------------------------


def test_abaw_cross_validate_finetune_end_to_end(tmp_path, capsys):
    """Official split + 2 folds of a tiny FaceMAE, one step each, each a process of its own; a re-run skips them."""
    data, model = make_synthaffect(tmp_path / "synth"), make_pretrained_face_mae(tmp_path / "pretrained")
    output = tmp_path / "cv"
    stage = ["--data", str(data), "--model", str(model), "--tasks", "va", "--max_steps", "1", *QUICK]
    command = ["cross-validate", "finetune", "--output-dir", str(output), "--num-folds", "2", *stage]
    assert abaw([*command, "--report_to", "none"]) == 0
    out = capsys.readouterr().out
    for name in ("official", "fold_1", "fold_2"):
        assert (output / name / "final" / "model.safetensors").is_file() and (output / f"{name}.log").is_file()
        assert f"{name}: training into {output / name}" in out and f"{name}: done in" in out
    histories = {name: json.loads((output / name / "history.json").read_text()) for name in ("official", "fold_2")}
    assert histories["official"]["split"] == {
        "fold": "official",
        "num_folds": 2,
        "fold_seed": 0,
        "validation_videos": AffWild2(data).videos("validation", ["va"]),
    }
    assert histories["fold_2"]["split"]["fold"] == 2 and histories["fold_2"]["tasks"] == ["va"]
    rows = [line.split(" | ")[0] for line in (output / "folds.md").read_text().splitlines() if line.startswith("| ")]
    assert rows == ["| split", "| official", "| fold 1", "| fold 2", "| mean ± std (2 folds)"]
    assert list(json.loads((output / "folds.json").read_text())["splits"]) == ["official", "fold_1", "fold_2"]
    assert (output / "folds.png").is_file()

    assert abaw([*command, "--report_to", "none"]) == 0
    out = capsys.readouterr().out
    assert all(
        f"{name}: finished before, skipped ({output / name})" in out for name in ("official", "fold_1", "fold_2")
    )
    assert "training into" not in out


FAKE_STAGE = """
import json, sys
from pathlib import Path
argv = sys.argv[1:]
output = Path(argv[argv.index("--output_dir") + 1])
with open(sys.argv[0] + ".calls", "a") as calls:
    calls.write(json.dumps(argv) + "\\n")
if "--fail" in argv and output.name == "fold_1":
    print("the stage broke")
    sys.exit(3)
"""


def test_cross_validate_resumes_an_interrupted_split_and_stops_at_a_failed_one(tmp_path, capsys):
    """With a --launcher (a stand-in stage that records its command line): an interrupted split resumes from its
    latest checkpoint, a failed split stops the command with status 1, naming the split and its log."""
    stand_in = tmp_path / "stage.py"
    stand_in.write_text(FAKE_STAGE)
    output = tmp_path / "cv"
    checkpoint = output / "official" / "checkpoints" / "step_3"
    checkpoint.mkdir(parents=True)
    (checkpoint / "training_state.json").write_text("{}")
    launcher = f"{sys.executable} {stand_in}"
    command = ["cross-validate", "tmf", "--output-dir", str(output), "--launcher", launcher, "--num-folds", "3"]
    assert abaw([*command, "--data", "d", "--fail"]) == 1
    captured = capsys.readouterr()
    assert "official: resuming into" in captured.out and "fold_1: training into" in captured.out
    assert f"abaw cross-validate: fold_1 failed (exit status 3); see {output / 'fold_1.log'}" in captured.err
    assert "the stage broke" in captured.err and not (output / "fold_2.log").exists()
    calls = [json.loads(line) for line in Path(f"{stand_in}.calls").read_text().splitlines()]
    assert calls[0] == [
        *["-m", "modeling_abaw.train.tmf", "--data", "d", "--fail", "--output_dir", str(output / "official")],
        *["--fold", "official", "--num_folds", "3", "--fold_seed", "0", "--resume_from_checkpoint", "latest"],
    ]
    assert calls[1][calls[1].index("--fold") + 1] == "1" and "--resume_from_checkpoint" not in calls[1]


@pytest.mark.parametrize("flag", ["--fold", "--fold=2", "--resume_from_checkpoint", "--resume-from-checkpoint"])
def test_cross_validate_refuses_the_flags_it_sets(tmp_path, flag, capsys):
    assert abaw(["cross-validate", "finetune", "--output-dir", str(tmp_path), flag, "1"]) == 2
    name = flag.split("=")[0]
    assert capsys.readouterr().err.startswith(f"abaw cross-validate: error: {name}: cross-validate sets it")


def test_cross_validate_needs_an_output_dir(capsys):
    assert abaw(["cross-validate", "finetune", "--data", "d"]) == 2
    assert capsys.readouterr().err == "abaw cross-validate: error: --output-dir is required\n"
