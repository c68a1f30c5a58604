"""What the affect stages take from the data, as the paper: one track per run (--tasks required), no split leak in a
multi-task run, Eq. 1 / Eq. 2 loss weights from the training split, Table 8 TMF modalities by default."""

import shutil

import datasets
import numpy as np
import pytest
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file
from test_train import QUICK, make_feature_cache, make_pretrained_face_mae, make_synthaffect, make_tmf_config, read_json

from modeling_abaw.data import AffWild2
from modeling_abaw.errors import InputError
from modeling_abaw.features import FeatureCache
from modeling_abaw.tasks import TASKS
from modeling_abaw.train import finetune, tmf
from modeling_abaw.train.labels import loss_weights, training_and_validation_frames


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthaffect(tmp_path_factory.mktemp("recipe") / "synth")


@pytest.fixture(scope="module")
def leaky(synth, tmp_path_factory):
    """SynthAffect where one video is in the AU Train_Set but in the EXPR Validation_Set (as Aff-Wild2's challenges
    have different lists): its EXPR annotation moved from Train_Set to Validation_Set."""
    root = shutil.copytree(synth, tmp_path_factory.mktemp("leaky") / "synth")
    data = AffWild2(root)
    video = data.videos("train", ["au"])[0]
    moved = data.annotation_path("expr", "train", video)
    moved.rename(moved.parent.parent / "Validation_Set" / moved.name)
    return root, video


def test_a_video_validated_for_one_task_gives_no_frame_to_a_multi_task_training(leaky):
    root, video = leaky
    data = AffWild2(root)
    assert video in data.videos("train", ["au"]) and video in data.videos("validation", ["expr"])

    train_frames, eval_frames, note = training_and_validation_frames(data, ["au", "expr"])
    assert video not in set(train_frames["video"]) and video in set(eval_frames["video"])
    others = [name for name in data.videos("train", ["au", "expr"]) if name != video]
    assert sorted(set(train_frames["video"])) == others
    video_frames = len(data.frame_table("train", ["au"], videos=[video]))
    assert note == (
        f"Split hygiene of the multi-task run (au, expr): 1 of {len(others) + 1} training video(s) "
        f"({video_frames} frames) left out of training, being in the validation set of one of these tasks"
    )
    # One task: its own lists, the video trains.
    au_train, _, au_note = training_and_validation_frames(data, ["au"])
    assert video in set(au_train["video"]) and au_note == ""


def test_a_multi_task_run_prints_what_split_hygiene_dropped(leaky, tmp_path, capfd):
    root, video = leaky
    model = make_pretrained_face_mae(tmp_path / "pretrained")
    arguments = ["--data", str(root), "--model", str(model), "--tasks", "au,expr", "--max_steps", "1", *QUICK]
    assert finetune.main([*arguments, "--output_dir", str(tmp_path / "out"), "--report_to", "none"]) == 0
    lines = [line for line in "".join(capfd.readouterr()).splitlines() if line.startswith("Split hygiene")]
    assert len(lines) == 1 and "1 of " in lines[0] and "left out of training" in lines[0]


def test_the_stages_have_no_multi_task_default(synth, tmp_path, capsys):
    for main, extra in ((finetune.main, ["--model", "m"]), (tmf.main, ["--features", "f"])):
        with pytest.raises(SystemExit):
            main(["--data", str(synth), *extra, "--output_dir", str(tmp_path)])
        assert "the following arguments are required: --tasks" in capsys.readouterr().err
    help_text = finetune.FinetuneArguments.__dataclass_fields__["tasks"].metadata["help"]
    assert help_text.startswith("The paper trains one model per track: --tasks au, expr or va.")


def test_loss_weights_are_eq_1_and_eq_2_counted_by_hand():
    # 5 frames: AU1 positive in 4 frames, AU2 in 2, AU4 in 1 (one -1 marker), the others never.
    au = np.zeros((5, 12), dtype=np.float32)
    au[:4, 0] = 1
    au[:2, 1] = 1
    au[0, 2], au[1, 2] = 1, -1
    expr = np.array([0, 0, 0, 4, -1])  # Neutral x3, Happiness x1, one unlabelled
    va = np.zeros((5, 2), dtype=np.float32)
    frames = datasets.Dataset.from_dict({"au_labels": au, "expr_labels": expr, "va_labels": va})
    weights = loss_weights(frames, ["au", "expr", "va"])
    assert set(weights) == {"au_class_weight", "au_pos_weight", "expr_class_weight"}
    np.testing.assert_allclose(weights["au_class_weight"][:3], [4 / 4, 4 / 2, 4 / 1])  # N_max / N_j
    assert weights["au_pos_weight"] == [1.0] * 12
    present = np.array(weights["expr_class_weight"])[[0, 4]]
    np.testing.assert_allclose(present, [3 / 3, 3 / 1])  # N_max / N_c

    # The option: positives weighted by negatives/positives, Eq. 1's W_j left at ones.
    option = loss_weights(frames, ["au"], au_positive_weighting=True)
    assert option["au_class_weight"] == [1.0] * 12
    np.testing.assert_allclose(option["au_pos_weight"][:3], [1 / 4, 3 / 2, 3 / 1])


@pytest.fixture(scope="module")
def mae_only_cache(synth, tmp_path_factory):
    """A feature cache holding only the visual feature (mae), as `abaw extract-features` without audio writes."""
    full = make_feature_cache(synth, tmp_path_factory.mktemp("cache") / "full")
    cache = FeatureCache.create(tmp_path_factory.mktemp("cache") / "mae", {"mae": 16}, {"mae": {"model": "tiny-mae"}})
    for video in full.videos:
        tensors = load_file(full.video_path(video))
        cache.write_video(video, {name: tensors[name] for name in ("frame", "has_face", "mae")})
    return cache


def test_tmf_fuses_the_table_8_modalities_of_its_tasks_by_default(synth, mae_only_cache, tmp_path):
    assert [TASKS[name].tmf_modalities for name in ("au", "expr", "va")] == [
        ("mae",),
        ("mae", "hubert", "vggish"),
        ("mae", "hubert", "vggish"),
    ]
    config = make_tmf_config(tmp_path / "config")
    arguments = ["--data", str(synth), "--features", str(mae_only_cache.path), "--model", str(config), *QUICK]
    arguments += ["--batch_size", "2", "--max_steps", "1", "--report_to", "none"]
    assert tmf.main([*arguments, "--tasks", "au", "--output_dir", str(tmp_path / "au")]) == 0
    assert read_json(tmp_path / "au" / "final" / "config.json")["used_modalities"] == ["mae"]

    with pytest.raises(InputError) as error:
        tmf.main([*arguments, "--tasks", "expr", "--output_dir", str(tmp_path / "expr")])
    assert str(error.value) == (
        f"{mae_only_cache.path} holds mae, not hubert, vggish of the default modalities of --tasks expr "
        "(mae,hubert,vggish, the paper's Table 8); pass --modalities"
    )
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    assert tmf.main([*arguments, "--tasks", "expr", "--modalities", "mae", "--output_dir", str(tmp_path / "x")]) == 0
    assert read_json(tmp_path / "x" / "final" / "config.json")["used_modalities"] == ["mae"]


def test_the_default_modalities_of_several_tasks_are_their_union_in_registry_order():
    arguments = tmf.TMFArguments(data="d", features="f", output_dir="o", tasks="va,au")
    assert arguments.modality_list == ["mae", "hubert", "vggish"]
    assert tmf.TMFArguments(data="d", features="f", output_dir="o", tasks="au").modality_list == ["mae"]
