"""The networks of lipjax (flax.linen, channels-last); see SPEC.md for the sizes."""

from lipjax.models.audio_encoder import AudioEncoder
from lipjax.models.correlation import AudioDerivativeNet, FlowEncoder, correlation_loss
from lipjax.models.discriminator import Discriminator
from lipjax.models.flownet import (
    MULTISCALE_WEIGHTS,
    FlowNetS,
    downsample_flow,
    multiscale_epe,
    video_flows,
)
from lipjax.models.generator import Generator, fuse_audio_identity
from lipjax.models.identity_encoder import IdentityEncoder
from lipjax.models.layers import conv3d_as_2d_taps
from lipjax.models.perceptual import (
    PerceptualAutoencoder,
    PerceptualDecoder,
    PerceptualEncoder,
    perceptual_loss,
)

__all__ = [
    "MULTISCALE_WEIGHTS",
    "AudioDerivativeNet",
    "AudioEncoder",
    "Discriminator",
    "FlowEncoder",
    "FlowNetS",
    "Generator",
    "IdentityEncoder",
    "PerceptualAutoencoder",
    "PerceptualDecoder",
    "PerceptualEncoder",
    "conv3d_as_2d_taps",
    "correlation_loss",
    "downsample_flow",
    "fuse_audio_identity",
    "multiscale_epe",
    "perceptual_loss",
    "video_flows",
]
