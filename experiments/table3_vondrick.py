"""Table 3 of the paper, baseline "Vondrick": a conditional two-stream video GAN after
Vondrick et al., "Generating videos with scene dynamics" (NIPS 2016), with their adversarial
objective and mask sparsity prior (lipjax/models/vondrick_baseline.py).

python -m lipjax.main --config=experiments/table3_vondrick.py --workdir=runs/t3_vondrick  # GRID
python -m lipjax.main --config=experiments/table3_vondrick.py:synthetic --workdir=runs/t3_v  # CPU
python -m lipjax.main --config=experiments/table3_vondrick.py:smoke --workdir=/tmp/t3_vondrick
"""

from lipjax import configs


def get_config(variant: str = ""):
    config = configs.table_config(variant)
    config.model.architecture = "vondrick"
    # Their GAN objective, -log D(real) - log(1 - D(fake)) for D (fake weight 1, no
    # mismatched-audio term) and -log D(fake) for G, plus the mask sparsity prior
    # (loss.mask_sparsity); no reconstruction term. The discriminator is our two-stream one:
    # Vondrick's 3D-conv video discriminator conditioned on the audio.
    config.loss.pixel = 0.0
    config.loss.perceptual = 0.0
    config.loss.correlation = 0.0
    config.loss.adversarial = 1.0
    config.loss.discriminator = "two"
    config.loss.fake_weight = 1.0
    config.loss.mismatch_weight = 0.0
    return config
