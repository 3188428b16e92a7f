"""The full model at the paper's sizes on LDC2009V01: 14 talkers; F02 and M01 held
out as in the authors' split.

    python -m lipjax.main --config=experiments/ldc.py --workdir=runs/ldc
    python -m lipjax.main --config=experiments/ldc.py:smoke --workdir=/tmp/ldc_smoke

The corpus is a manual download: build it first with the TFDS builder `ldc` of
`data_pipeline` (see README). Batch 24, Adam 2e-4 (0.5, 0.999), weight decay 4e-4,
FlowNet pretrained on generated shapes then lip crops, perceptual autoencoder pretrained
on the training crops (docs/design.md). `:smoke` runs the same code path for a few steps with tiny
models on synthetic_lips/tiny.
"""

from lipjax import configs


def get_config(variant: str = ""):
    return configs.dataset_config("ldc", variant)
