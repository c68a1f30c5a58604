"""The affect configs' label maps follow the tasks: the Hub widget and `pipeline()` read `id2label`."""

import json

import pytest
from transformers import AutoConfig

from modeling_abaw import FaceMAEConfig, TMFConfig
from modeling_abaw.tasks import AU, EXPR, VA


@pytest.mark.parametrize("config_class", [FaceMAEConfig, TMFConfig])
def test_id2label_is_the_tasks_labels_in_output_order(config_class):
    config = config_class()
    names = [*AU.labels, *EXPR.labels, *VA.labels]
    assert config.id2label == dict(enumerate(names)) and config.label2id == {name: i for i, name in enumerate(names)}
    assert config.num_labels == 22
    only = config_class(tasks=["va", "au"])
    assert list(only.id2label.values()) == [*AU.labels, "valence", "arousal"] and only.num_labels == 14


def test_changing_tasks_updates_the_labels():
    config = FaceMAEConfig()
    config.tasks = ["expr"]
    assert list(config.id2label.values()) == list(EXPR.labels) and config.label2id["Other"] == 7
    assert config.num_labels == 8
    with pytest.raises(ValueError, match="Unknown task 'pose'"):
        config.tasks = ["pose"]


def test_num_labels_cannot_contradict_the_tasks():
    with pytest.raises(ValueError, match="num_labels=3 does not fit the tasks"):
        FaceMAEConfig().num_labels = 3
    FaceMAEConfig().num_labels = 22  # consistent: accepted


def test_reloaded_config_keeps_the_labels(tmp_path):
    FaceMAEConfig(tasks=["va"]).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["id2label"] == {"0": "valence", "1": "arousal"}
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert type(reloaded) is FaceMAEConfig and reloaded.id2label == {0: "valence", 1: "arousal"}
    assert reloaded.label2id == {"valence": 0, "arousal": 1} and reloaded.num_labels == 2
    # Reloaded with other tasks, the labels follow the tasks, not the saved map.
    assert AutoConfig.from_pretrained(tmp_path, tasks=["au"]).id2label == dict(enumerate(AU.labels))
