"""Convert a facebookresearch/mae-format checkpoint into a FaceMAE model folder (see modeling_abaw.conversion.mae).

python hub_scripts/convert_mae_face_checkpoint.py --checkpoint mae_face_pretrain_vit_base.pth --output face-mae-base
"""

import sys

from modeling_abaw.conversion.mae import main

if __name__ == "__main__":
    sys.exit(main())
