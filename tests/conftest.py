# huggingface_hub reads HF_HUB_OFFLINE when it is first imported: set it before anything imports it.
import atexit
import os
import shutil
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# dtype "auto" caches its encoder choice and ONNX exports (modeling_abaw.inference.backends): in a folder of this
# session, shared with the commands tests run in subprocesses, not in the user's ~/.cache.
os.environ["MODELING_ABAW_CACHE"] = tempfile.mkdtemp(prefix="modeling-abaw-test-cache-")

import pytest

atexit.register(shutil.rmtree, os.environ["MODELING_ABAW_CACHE"], True)

# A FaceMAE small enough for fast tests: 32x32 images, 8x8 patches (16 patches), 2 encoder and 1 decoder layers.
TINY_FACE_MAE = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    image_size=32,
    patch_size=8,
    decoder_hidden_size=16,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=32,
)


@pytest.fixture
def tiny_face_mae_kwargs():
    return dict(TINY_FACE_MAE)


@pytest.fixture
def load_with_remote_code():
    """Load a saved model with `trust_remote_code=True` in a Python where `modeling_abaw` is not importable, run it on
    `inputs`, and return (class name, module name, tensor outputs): the push script's check
    (`modeling_abaw.hub.publish.load_with_remote_code`)."""
    from modeling_abaw.hub.publish import load_with_remote_code as load_without_package

    def load(model_dir, inputs):
        loaded = load_without_package(model_dir, inputs)
        return loaded.class_name, loaded.module, loaded.outputs

    return load


# Tiny backbones saved as local folders, shared by the feature, training and inference tests (no downloads).
# Tiny SSL audio models: feature encoder of stride 20 samples and receptive field 10 + 7 * 5 = 45 samples, with layer
# norm (not group norm) in the feature encoder, so chunked and whole-clip features agree.
TINY_SSL_AUDIO = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    conv_dim=(8, 8),
    conv_kernel=(10, 8),
    conv_stride=(5, 4),
    conv_bias=True,
    num_conv_pos_embeddings=8,
    num_conv_pos_embedding_groups=2,
    feat_extract_norm="layer",
)
TINY_VGGISH = {"block_channels": [4, 8, 8, 16], "embedding_hidden_size": 32, "embedding_size": 8}


@pytest.fixture(scope="session")
def tiny_face_mae_affect_dir(tmp_path_factory):
    import torch

    from modeling_abaw import FaceMAEConfig, FaceMAEForAffect

    path = tmp_path_factory.mktemp("tiny-face-mae-affect")
    torch.manual_seed(0)
    FaceMAEForAffect(FaceMAEConfig(**TINY_FACE_MAE)).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_hubert_dir(tmp_path_factory):
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    path = tmp_path_factory.mktemp("tiny-hubert")
    torch.manual_seed(0)
    HubertModel(HubertConfig(**TINY_SSL_AUDIO)).save_pretrained(path)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_vggish_dir(tmp_path_factory):
    import torch

    from modeling_abaw import VGGishConfig, VGGishModel

    path = tmp_path_factory.mktemp("tiny-vggish")
    torch.manual_seed(0)
    VGGishModel(VGGishConfig(**TINY_VGGISH)).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_tmf_dir(tmp_path_factory, tiny_face_mae_affect_dir, tiny_hubert_dir, tiny_vggish_dir):
    """A tiny TMF (EXPR and VA) fusing the tiny FaceMAE, HuBERT (layer 1) and VGGish models of local folders."""
    import torch

    from modeling_abaw import TMFConfig, TMFForAffect

    torch.manual_seed(1)
    config = TMFConfig(
        modalities={"mae": 32, "hubert": 16, "vggish": 8},
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        clip_length=12,
        tasks=["expr", "va"],
        backbones={
            "mae": {"model": tiny_face_mae_affect_dir},
            "hubert": {"model": tiny_hubert_dir, "layer": 1},
            "vggish": {"model": tiny_vggish_dir},
        },
    )
    path = tmp_path_factory.mktemp("tmf")
    TMFForAffect(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_synthaffect(tmp_path_factory):
    """A small SynthAffect dataset (4 videos x 40 frames, raw videos with audio); read-only for tests."""
    from modeling_abaw.data.synth import generate_synthaffect

    path = tmp_path_factory.mktemp("synthaffect") / "data"
    generate_synthaffect(path, num_videos=4, num_frames=40, seed=0)
    return path


def expected_table_columns(landmarks=False):
    """The columns `abaw predict` / AffectPipeline write for a model with all three tasks, in order (`landmarks`:
    with `--landmarks`)."""
    from modeling_abaw.alignment import LANDMARKS
    from modeling_abaw.tasks import AU, EXPR, VA

    face = ["face_x", "face_y", "face_w", "face_h", "face_roll"]
    if landmarks:
        face += [f"{name}_{axis}" for name in LANDMARKS for axis in "xy"]
    return ["frame", "timestamp", "has_face", "predicted", *face, *AU.labels, *EXPR.labels, "expression", *VA.labels]


@pytest.fixture
def loopback_hub(tmp_path):
    """A loopback Hub (tests/hub_server.py) on 127.0.0.1 for this test: `.endpoint`, `.client_env(home)` (the
    environment of a client subprocess), `.commits(repo_id)`, `.read(repo_id, path)`, `.requests`."""
    from hub_server import LoopbackHub

    hub = LoopbackHub(tmp_path / "loopback-hub").start()
    yield hub
    hub.stop()
