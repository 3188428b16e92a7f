"""Table 2, column (d) of the paper: no correlation loss.

python -m lipjax.main --config=experiments/table2_d.py --workdir=runs/table2_d             # GRID
python -m lipjax.main --config=experiments/table2_d.py:synthetic --workdir=runs/t2_d_syn  # CPU
python -m lipjax.main --config=experiments/table2_d.py:smoke --workdir=/tmp/t2_d
"""

from lipjax import configs


def get_config(variant: str = ""):
    config = configs.table_config(variant)
    config.loss.correlation = 0.0  # no l_corr (no correlation nets)
    return config
