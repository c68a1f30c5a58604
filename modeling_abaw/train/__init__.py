"""The paper's three training stages as Accelerate programs (paper Sec. 3 and 4.1).

    python -m modeling_abaw.train.pretrain ...   MAE self-supervised pre-training on face images
    python -m modeling_abaw.train.finetune ...   frame-wise fine-tuning of FaceMAEForAffect on Aff-Wild2
    python -m modeling_abaw.train.tmf ...        TMFForAffect on clips of cached per-frame features

Each also runs as `accelerate launch -m modeling_abaw.train.<stage> ...` (several GPUs or nodes) and as
`abaw train <stage> ...`. They share `arguments` (their flags), `checkpointing` (the model a stage starts from,
checkpoints, saved models), `loop` (the training loop) and, for face images, `transforms`; `labels` serves the affect
stages (finetune, tmf). This module stays light: `abaw --help` imports it.
"""

STAGES: dict[str, str] = {
    "pretrain": "MAE self-supervised pre-training of FaceMAEForPreTraining on face images",
    "finetune": "frame-wise fine-tuning of FaceMAEForAffect on the Aff-Wild2 layout",
    "tmf": "TMFForAffect on clips of per-frame features from a feature cache",
}

OFFICIAL_SPLIT = "official"  # --fold of the released Train/Validation split (and `abaw cross-validate`'s run folder)
HISTORY_FILE = "history.json"  # written by `loop.train` into a run's output folder; read by `abaw fold-table`
# In every saved model folder (best/, final/), beside its README.md card, which is made from them:
EVAL_RESULTS_FILE = "eval_results.json"  # the validation metrics of the folder's weights
TRAINING_INFO_FILE = "training_info.json"  # how they were trained: stage, arguments, start model, data, split
