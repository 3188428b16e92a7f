"""Table 2, column (b) of the paper: no pixel loss.

python -m lipjax.main --config=experiments/table2_b.py --workdir=runs/table2_b             # GRID
python -m lipjax.main --config=experiments/table2_b.py:synthetic --workdir=runs/t2_b_syn  # CPU
python -m lipjax.main --config=experiments/table2_b.py:smoke --workdir=/tmp/t2_b
"""

from lipjax import configs


def get_config(variant: str = ""):
    config = configs.table_config(variant)
    config.loss.pixel = 0.0  # no l_pix
    return config
