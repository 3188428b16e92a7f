"""Table 2, column (e) of the paper: the full model.

python -m lipjax.main --config=experiments/table2_e.py --workdir=runs/table2_e             # GRID
python -m lipjax.main --config=experiments/table2_e.py:synthetic --workdir=runs/t2_e_syn  # CPU
python -m lipjax.main --config=experiments/table2_e.py:smoke --workdir=/tmp/t2_e
"""

from lipjax import configs


def get_config(variant: str = ""):
    config = configs.table_config(variant)
    # nothing: the full model (every loss, three-stream discriminator)
    return config
