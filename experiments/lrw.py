"""The full model at the paper's sizes on LRW (Chung and Zisserman 2016): 500 words
from news broadcasts.

    python -m lipjax.main --config=experiments/lrw.py --workdir=runs/lrw
    python -m lipjax.main --config=experiments/lrw.py:smoke --workdir=/tmp/lrw_smoke

The corpus is a manual download: build it first with the TFDS builder `lrw` of
`data_pipeline` (see README). Batch 24, Adam 2e-4 (0.5, 0.999), weight decay 4e-4,
FlowNet pretrained on generated shapes then lip crops, perceptual autoencoder pretrained
on the training crops (docs/design.md). `:smoke` runs the same code path for a few steps with tiny
models on synthetic_lips/tiny.
"""

from lipjax import configs


def get_config(variant: str = ""):
    return configs.dataset_config("lrw", variant)
