"""Table 3 of the paper, baseline "Chung": Chung et al., "You said that?" (BMVC 2017), one
frame per 0.35 s of audio, L1 reconstruction loss only (lipjax/models/chung_baseline.py).

python -m lipjax.main --config=experiments/table3_chung.py --workdir=runs/t3_chung        # GRID
python -m lipjax.main --config=experiments/table3_chung.py:synthetic --workdir=runs/t3_c  # CPU
python -m lipjax.main --config=experiments/table3_chung.py:smoke --workdir=/tmp/t3_chung
"""

from lipjax import configs


def get_config(variant: str = ""):
    config = configs.table_config(variant)
    config.model.architecture = "chung"
    # The L1 reconstruction loss only.
    config.loss.pixel = 1.0
    config.loss.perceptual = 0.0
    config.loss.adversarial = 0.0
    config.loss.correlation = 0.0
    return config
