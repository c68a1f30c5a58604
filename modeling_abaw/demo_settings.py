"""The settings of the end-to-end demo, apart from the demo itself so that `abaw demo --help` shows their defaults
without importing the pipeline (torch, Accelerate, datasets, matplotlib)."""

from dataclasses import dataclass
from pathlib import Path


@dataclass
class DemoSettings:
    output: Path
    # Many short videos: identities matter more than frames for learning across people, and 12 test identities give
    # every class test frames and the bootstrap over videos something to resample. 100 frames = one TMF clip.
    videos: int = 80
    frames: int = 100
    seed: int = 0
    model_size: str = "demo-tiny"  # a `modeling_abaw.presets.FACE_MAE_PRESETS` name
    pretrained: str | None = None  # skip pre-training and fine-tune this FaceMAE checkpoint
    pretrain_epochs: int = 8
    finetune_epochs: int = 5
    tmf_epochs: int = 30
    audio: str = "logmel"  # audio extractors; "hubert,vggish" where the Hub checkpoints can be downloaded
    device: str = "auto"  # of the feature extraction: "auto" is the first of cuda, mps and cpu that is available
    num_workers: int = 2
