"""Push a model folder to the Hugging Face Hub: the same command as `abaw push` (see modeling_abaw.hub.publish).

python hub_scripts/push_to_hub.py --model runs/finetune/best --repo-id ORG/face-mae-affect --tag v0.1
python hub_scripts/push_to_hub.py --model runs/tmf/best --repo-id ORG/tmf-expr --push-backbones ORG/tmf-expr
python hub_scripts/push_to_hub.py --model runs/finetune/best --repo-id ORG/x --dry-run upload/   # build only
"""

import sys

from modeling_abaw.cli import main

if __name__ == "__main__":
    sys.exit(main(["push", *sys.argv[1:]]))
