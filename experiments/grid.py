"""The full model at the paper's sizes on GRID (Cooke et al. 2006): 33 speakers x
1000 sentences; test speakers held out.

    python -m lipjax.main --config=experiments/grid.py --workdir=runs/grid
    python -m lipjax.main --config=experiments/grid.py:authors --workdir=runs/grid_authors
    python -m lipjax.main --config=experiments/grid.py:smoke --workdir=/tmp/grid_smoke

The corpus is a manual download: build it first with the TFDS builder `grid` of
`data_pipeline` (see README). Batch 24, Adam 2e-4 (0.5, 0.999), weight decay 4e-4,
FlowNet pretrained on generated shapes then lip crops, perceptual autoencoder pretrained
on the training crops (docs/design.md). `:smoke` runs the same code path for a few steps with tiny
models on synthetic_lips/tiny.

`:authors` is what the authors' released trainer trains (lelechen63/3d_gan@83b65d9,
trainer_corr_perceptual_difference.py lines 16 and 161): the two-stream discriminator of
model_corr.py (audio + video, no flow stream) and pixel weight 0.2 instead of the paper's
0.5, and audio frequency along the image height in the fusion; everything else as the
default (docs/FIDELITY.md).
"""

from lipjax import configs


def get_config(variant: str = ""):
    if variant == "authors":
        config = configs.dataset_config("grid")
        config.loss.discriminator = "two"
        config.loss.pixel = 0.2
        config.model.audio_frequency_axis = "height"
        return config
    return configs.dataset_config("grid", variant)
