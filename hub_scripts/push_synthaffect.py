"""Push a generated SynthAffect to the Hugging Face Hub as a dataset repository: the same command as
`abaw push-synthaffect` (see modeling_abaw.hub.synthaffect).

python hub_scripts/push_synthaffect.py --data synthaffect --repo-id ORG/synthaffect --tag v0.1
python hub_scripts/push_synthaffect.py --data synthaffect --repo-id ORG/synthaffect --dry-run upload/   # build only
"""

import sys

from modeling_abaw.cli import main

if __name__ == "__main__":
    sys.exit(main(["push-synthaffect", *sys.argv[1:]]))
