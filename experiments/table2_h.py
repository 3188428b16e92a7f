"""Table 2, column (h) of the paper: two-stream discriminator, no correlation loss.

python -m lipjax.main --config=experiments/table2_h.py --workdir=runs/table2_h             # GRID
python -m lipjax.main --config=experiments/table2_h.py:synthetic --workdir=runs/t2_h_syn  # CPU
python -m lipjax.main --config=experiments/table2_h.py:smoke --workdir=/tmp/t2_h
"""

from lipjax import configs


def get_config(variant: str = ""):
    config = configs.table_config(variant)
    config.loss.discriminator = "two"  # two-stream discriminator
    config.loss.correlation = 0.0  # and no l_corr
    return config
