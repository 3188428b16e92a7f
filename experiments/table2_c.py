"""Table 2, column (c) of the paper: no perceptual loss.

python -m lipjax.main --config=experiments/table2_c.py --workdir=runs/table2_c             # GRID
python -m lipjax.main --config=experiments/table2_c.py:synthetic --workdir=runs/t2_c_syn  # CPU
python -m lipjax.main --config=experiments/table2_c.py:smoke --workdir=/tmp/t2_c
"""

from lipjax import configs


def get_config(variant: str = ""):
    config = configs.table_config(variant)
    config.loss.perceptual = 0.0  # no l_perc
    return config
