"""Table 2, column (g) of the paper: two-stream discriminator.

python -m lipjax.main --config=experiments/table2_g.py --workdir=runs/table2_g             # GRID
python -m lipjax.main --config=experiments/table2_g.py:synthetic --workdir=runs/t2_g_syn  # CPU
python -m lipjax.main --config=experiments/table2_g.py:smoke --workdir=/tmp/t2_g
"""

from lipjax import configs


def get_config(variant: str = ""):
    return configs.table_2_config("g", variant)
