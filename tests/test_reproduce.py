"""docs/REPRODUCE.md cannot rot: its `bash` blocks run, in order, as one script on a tiny SynthAffect with tiny
models (the guide's settings given in the environment), from conversion to the test submission."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from test_convert_mae import make_pretraining
from test_vggish import torchvggish_state_dict

from modeling_abaw.data import read_submission
from modeling_abaw.data.submission import submission_file_name

REPOSITORY = Path(__file__).resolve().parents[1]
GUIDE = REPOSITORY / "docs" / "REPRODUCE.md"


def guide_script() -> str:
    blocks = re.findall(r"^```bash\n(.*?)^```", GUIDE.read_text(), flags=re.S | re.M)
    assert len(blocks) >= 7, "the guide's stages are bash blocks"
    return "set -euo pipefail\n" + "\n".join(blocks)


def test_the_reproduction_guide_runs_end_to_end_on_synthaffect(tiny_synthaffect, tiny_hubert_dir, tmp_path):
    data, runs = tmp_path / "data", tmp_path / "runs"
    shutil.copytree(tiny_synthaffect, data)
    torch.save({"model": make_pretraining(seed=0)}, tmp_path / "mae_face.pth")
    torch.save(torchvggish_state_dict(seed=0, with_pca=False), tmp_path / "vggish.pth")
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # python, abaw of this install
        "HF_HUB_OFFLINE": "1",
        "DATA": str(data),
        "MAE_FACE_CHECKPOINT": str(tmp_path / "mae_face.pth"),
        "VGGISH_CHECKPOINT": str(tmp_path / "vggish.pth"),
        "HUBERT": tiny_hubert_dir,
        "RUNS": str(runs),
        "LAUNCH": "python",  # one process: `python -m modeling_abaw.train.<stage>`
        "TASKS": "va",  # a track that fuses audio (Table 8's best for VA: mae,hubert,vggish)
        "FEATURE_SETS": "mae mae,hubert,vggish",
        "NUM_FOLDS": "2",
        "TRAIN_FLAGS": "--max_steps 1 --batch_size 2 --num_workers 0 --report_to none",
    }
    result = subprocess.run(
        ["bash", "-c", guide_script()], cwd=REPOSITORY, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    splits = sorted(path.name for path in (runs / "finetune-va").iterdir() if (path / "final").is_dir())
    assert splits == ["fold_1", "fold_2", "official"]
    table = (runs / "finetune-va" / "folds.md").read_text()
    assert "valence" in table and "arousal" in table and "official" in table
    assert (runs / "tmf-va-mae" / "best" / "eval_results.json").is_file()
    assert (runs / "final-va" / "smoothing_search.md").is_file()
    submission = read_submission(runs / "submission" / submission_file_name("va"), "va")
    assert list(submission) == ["synth_003"] and len(submission["synth_003"]) == 40
