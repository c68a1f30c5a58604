"""The settings of the end-to-end demo, apart from the demo itself so that `abaw demo --help` shows their defaults
without importing the pipeline (torch, Accelerate, datasets, matplotlib)."""

from dataclasses import dataclass
from pathlib import Path


@dataclass
class DemoSettings:
    output: Path
    videos: int = 24  # many short videos: identities matter more than frames for learning across people
    frames: int = 150
    seed: int = 0
    model_size: str = "demo-small"  # a `modeling_abaw.presets.FACE_MAE_PRESETS` name
    pretrained: str | None = None  # skip pre-training and fine-tune this FaceMAE checkpoint
    pretrain_epochs: int = 10
    finetune_epochs: int = 10
    tmf_epochs: int = 40
    audio: str = "logmel"  # audio extractors; "hubert,vggish" where the Hub checkpoints can be downloaded
    device: str = "auto"  # of the feature extraction: "auto" is the first of cuda, mps and cpu that is available
    num_workers: int = 2
