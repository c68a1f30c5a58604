"""The paper's three training stages as Accelerate programs (paper Sec. 3 and 4.1).

    python -m modeling_abaw.train.pretrain ...   MAE self-supervised pre-training on face images
    python -m modeling_abaw.train.finetune ...   frame-wise fine-tuning of FaceMAEForAffect on Aff-Wild2
    python -m modeling_abaw.train.tmf ...        TMFForAffect on clips of cached per-frame features

Each also runs as `accelerate launch -m modeling_abaw.train.<stage> ...` (several GPUs or nodes) and as
`abaw train <stage> ...`. The shared loop, checkpointing and evaluation live in `common.py`.
"""

STAGES: dict[str, str] = {
    "pretrain": "MAE self-supervised pre-training of FaceMAEForPreTraining on face images",
    "finetune": "frame-wise fine-tuning of FaceMAEForAffect on the Aff-Wild2 layout",
    "tmf": "TMFForAffect on clips of per-frame features from a feature cache",
}
