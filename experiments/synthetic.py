"""The default run: CPU-sized models on our synthetic corpus (synthetic_lips/small).

    python -m lipjax.main --config=experiments/synthetic.py --workdir=runs/synthetic
    python -m lipjax.main --config=experiments/synthetic.py:smoke --workdir=/tmp/smoke
    python -m lipjax.main --config=experiments/synthetic.py:paper_losses --workdir=runs/paper
    python -m lipjax.main --config=experiments/synthetic.py:long --workdir=runs/synthetic_long
    python -m lipjax.main --config=experiments/synthetic.py:long_l1 --workdir=runs/long_l1

The default is the README's quick start: in about 20 minutes on 2 CPU cores (corpus build
included) it trains a generator whose lips visibly open and close with the speech: the
paper's generator with two CPU options (U-Net identity skips, a dense audio fusion) on the
L1 loss alone, 600 steps, no pretraining. `:long_l1` is the same recipe for 1,500 steps;
lipjax's default weights (`lipjax/assets/default_weights`) come from it:

    python -m lipjax.cli.export_weights --checkpoint=runs/long_l1/best \
        --output=lipjax/assets/default_weights

`:paper_losses` runs the paper's whole pipeline at CPU size (FlowNet and perceptual
pretraining, four losses, three-stream discriminator) for 100 steps, a demonstration;
`:long` is that for 2,000 steps. Measured times and test LMDs of every variant, and why
the paper's losses learn less lip motion at CPU size, are in experiments/RESULTS.md
("CPU-size trials").
`:smoke` is a seconds-long run on synthetic_lips/tiny for tests.
"""

from lipjax import configs


def _decaying_schedule(config, num_steps: int, decay_start_step: int, ema_decay: float):
    """A constant learning rate to `decay_start_step`, then every learning rate falling to
    zero at `num_steps` while an average of the generator's weights is what is scored,
    kept as best and exported."""
    config.num_steps = num_steps
    config.optim.decay_start_step = decay_start_step
    config.optim.ema_decay = ema_decay
    config.optim.ema_start_step = decay_start_step


def _l1_recipe(config):
    """The paper's generator with two CPU options, U-Net skips from the identity encoder and
    a dense audio fusion, trained on the L1 reconstruction loss alone. At CPU size the
    adversarial term keeps the lips from learning (the discriminator wins and the pixel loss
    rises; experiments/RESULTS.md, ":long_l1, the default weights' run"); without it and the
    perceptual and correlation terms no pretraining is needed and a step is 2x faster."""
    config.model.identity_unet_skips = True
    config.model.audio_fusion = "dense"
    config.loss.pixel = 1.0
    config.loss.perceptual = 0.0
    config.loss.adversarial = 0.0
    config.loss.correlation = 0.0


def get_config(variant: str = ""):
    config = configs.cpu_sized(configs.base_config())
    config.dataset = "synthetic_lips/small"  # built on first use (about 4 minutes)
    config.eval.max_batches = 0  # the whole validation split (48 utterances)
    config.checkpoint_every_steps = 50
    config.log_every_steps = 10
    if variant == "":
        # The quick start: visible lip motion in about 20 minutes on 2 CPU cores.
        _l1_recipe(config)
        _decaying_schedule(config, num_steps=600, decay_start_step=300, ema_decay=0.99)
        config.eval.every_steps = 150
    elif variant == "smoke":
        configs.smoke(config)  # the paper's whole pipeline, a few steps of tiny models
    elif variant == "paper_losses":
        # The whole pipeline of the paper at CPU size: FlowNet and perceptual pretraining,
        # then the four losses and the three-stream discriminator, for 100 steps (a
        # demonstration: the lips do not learn to move in so few steps).
        config.num_steps = 100
        config.eval.every_steps = 50
        config.checkpoint_every_steps = 25
        config.log_every_steps = 5
    elif variant == "long":
        # The paper's losses for 2,000 steps: validation LMD stops improving near step 1,000
        # at a constant learning rate while the discriminator wins (experiments/RESULTS.md,
        # "CPU-sized models"); from there the learning rates fall to zero and an average of
        # the generator's weights is scored.
        _decaying_schedule(config, num_steps=2_000, decay_start_step=1_000, ema_decay=0.998)
        config.eval.every_steps = 250
        config.checkpoint_every_steps = 100
        config.log_every_steps = 25
    elif variant == "long_l1":
        # The default weights' run: the quick start's recipe for 1,500 steps.
        _l1_recipe(config)
        _decaying_schedule(config, num_steps=1_500, decay_start_step=1_000, ema_decay=0.998)
        config.eval.every_steps = 250
        config.checkpoint_every_steps = 100
        config.log_every_steps = 25
    else:
        raise ValueError(
            f"variant: expected '', 'smoke', 'paper_losses', 'long' or 'long_l1', got {variant!r}"
        )
    return config
