"""Table 2, column (a) of the paper: no adversarial loss (l_pix + l_perc + l_corr).

python -m lipjax.main --config=experiments/table2_a.py --workdir=runs/table2_a             # GRID
python -m lipjax.main --config=experiments/table2_a.py:synthetic --workdir=runs/t2_a_syn  # CPU
python -m lipjax.main --config=experiments/table2_a.py:smoke --workdir=/tmp/t2_a
"""

from lipjax import configs


def get_config(variant: str = ""):
    config = configs.table_config(variant)
    config.loss.adversarial = 0.0  # no discriminator: l_pix + l_perc + l_corr
    return config
