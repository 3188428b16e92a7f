"""lipjax: lip movements generation at a glance (Chen et al., ECCV 2018) in JAX/Flax.

`from lipjax import generate; frames = generate(params, audio, image)` (see
`lipjax.inference.generate`). Loaded on first use, so `import lipjax.data.audio` does not
load the models.
"""


def __getattr__(name):
    if name == "generate":
        from lipjax.inference.generate import generate

        return generate
    raise AttributeError(f"module 'lipjax' has no attribute {name!r}")
