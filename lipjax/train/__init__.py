"""Training: the jitted step, losses, the GAN loop and the pretraining stages."""


def train_and_evaluate(config, workdir: str) -> dict:
    """Runs the stage `config.stage` in `workdir` (see `lipjax.train.trainer`)."""
    from lipjax.train import trainer  # imported on use: it loads orbax, grain and the models

    return trainer.train_and_evaluate(config, workdir)
