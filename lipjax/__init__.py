"""lipjax: lip movements generation at a glance (Chen et al., ECCV 2018) in JAX/Flax.

`from lipjax import generate; frames = generate(params, audio, image)`: see
`lipjax.generate`. Imported lazily, so `import lipjax.audio` does not load the models.
"""


def __getattr__(name):
    if name == "generate":
        import importlib

        return importlib.import_module("lipjax.generate")
    raise AttributeError(f"module 'lipjax' has no attribute {name!r}")
