"""Table 2, column (f) of the paper: non-derivative correlation.

python -m lipjax.main --config=experiments/table2_f.py --workdir=runs/table2_f             # GRID
python -m lipjax.main --config=experiments/table2_f.py:synthetic --workdir=runs/t2_f_syn  # CPU
python -m lipjax.main --config=experiments/table2_f.py:smoke --workdir=/tmp/t2_f
"""

from lipjax import configs


def get_config(variant: str = ""):
    config = configs.table_config(variant)
    config.loss.correlation_mode = "non_derivative"  # correlate the raw features
    return config
