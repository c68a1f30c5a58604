"""Convert the PyTorch VGGish release into a transformers checkpoint (see modeling_abaw.conversion.vggish).

    python hub_scripts/convert_vggish_checkpoint.py --checkpoint vggish-10086976.pth \
        --pca-params vggish_pca_params-970ea276.pth --output vggish
"""

import sys

from modeling_abaw.conversion.vggish import main

if __name__ == "__main__":
    sys.exit(main())
