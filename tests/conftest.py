# huggingface_hub reads HF_HUB_OFFLINE when it is first imported: set it before anything imports it.
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

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
