"""Table 2, column (g) of the paper: two-stream discriminator.

python -m lipjax.main --config=experiments/table2_g.py --workdir=runs/table2_g             # GRID
python -m lipjax.main --config=experiments/table2_g.py:synthetic --workdir=runs/t2_g_syn  # CPU
python -m lipjax.main --config=experiments/table2_g.py:smoke --workdir=/tmp/t2_g
"""

from lipjax import configs


def get_config(variant: str = ""):
    config = configs.table_config(variant)
    config.loss.discriminator = "two"  # two-stream discriminator (no flow stream)
    return config
