"""Table 2, column (i) of the paper: three-stream discriminator on frame differences.

python -m lipjax.main --config=experiments/table2_i.py --workdir=runs/table2_i             # GRID
python -m lipjax.main --config=experiments/table2_i.py:synthetic --workdir=runs/t2_i_syn  # CPU
python -m lipjax.main --config=experiments/table2_i.py:smoke --workdir=/tmp/t2_i
"""

from lipjax import configs


def get_config(variant: str = ""):
    config = configs.table_config(variant)
    config.loss.discriminator = "frame_diff"  # three streams, frame differences for flow
    return config
