"""Table 2, column (c) of the paper: no perceptual loss.

python -m lipjax.main --config=experiments/table2_c.py --workdir=runs/table2_c             # GRID
python -m lipjax.main --config=experiments/table2_c.py:synthetic --workdir=runs/t2_c_syn  # CPU
python -m lipjax.main --config=experiments/table2_c.py:smoke --workdir=/tmp/t2_c
"""

from lipjax import configs


def get_config(variant: str = ""):
    return configs.table_2_config("c", variant)
