"""Table 3 of the paper, baseline "Vondrick": a conditional two-stream video GAN after
Vondrick et al., "Generating videos with scene dynamics" (NIPS 2016), with their adversarial
objective and mask sparsity prior (lipjax/models/vondrick_baseline.py).

python -m lipjax.main --config=experiments/table3_vondrick.py --workdir=runs/t3_vondrick  # GRID
python -m lipjax.main --config=experiments/table3_vondrick.py:synthetic --workdir=runs/t3_v  # CPU
python -m lipjax.main --config=experiments/table3_vondrick.py:smoke --workdir=/tmp/t3_vondrick
"""

from lipjax import configs


def get_config(variant: str = ""):
    return configs.table_3_config("vondrick", variant)
