"""The networks of lipjax (flax.linen, channels-last); see docs/design.md for the sizes."""

from lipjax.models.audio_encoder import AudioEncoder
from lipjax.models.chung_baseline import ChungGenerator
from lipjax.models.correlation import AudioDerivativeNet, FlowEncoder, correlation_loss
from lipjax.models.discriminator import Discriminator
from lipjax.models.factory import ARCHITECTURES, build_generator
from lipjax.models.flownet import (
    MULTISCALE_WEIGHTS,
    FlowNetS,
    downsample_flow,
    multiscale_epe,
    video_flows,
)
from lipjax.models.generator import (
    Generator,
    fuse_audio_identity,
    fuse_code_identity,
    warp_image,
)
from lipjax.models.identity_encoder import IdentityEncoder
from lipjax.models.layers import conv3d_as_2d_taps
from lipjax.models.perceptual import (
    PerceptualAutoencoder,
    PerceptualDecoder,
    PerceptualEncoder,
    perceptual_loss,
)
from lipjax.models.vondrick_baseline import VondrickGenerator

__all__ = [
    "ARCHITECTURES",
    "MULTISCALE_WEIGHTS",
    "AudioDerivativeNet",
    "AudioEncoder",
    "ChungGenerator",
    "Discriminator",
    "FlowEncoder",
    "FlowNetS",
    "Generator",
    "IdentityEncoder",
    "PerceptualAutoencoder",
    "PerceptualDecoder",
    "PerceptualEncoder",
    "VondrickGenerator",
    "build_generator",
    "conv3d_as_2d_taps",
    "correlation_loss",
    "downsample_flow",
    "fuse_audio_identity",
    "fuse_code_identity",
    "multiscale_epe",
    "perceptual_loss",
    "video_flows",
    "warp_image",
]
