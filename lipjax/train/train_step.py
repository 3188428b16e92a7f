"""The networks, their state, and the ONE jit-compiled training step (paper Sec. 4).

One step = one discriminator update, then one update of the generator together with the
correlation networks and FlowNet, each group with its own Adam (SPEC "Losses and
optimisation"). The generator runs forward once: `jax.vjp` keeps its pull-back so that the
discriminator update in between costs no second generator pass.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from lipjax.data import audio as audio_lib
from lipjax.models import (
    AudioDerivativeNet,
    Discriminator,
    FlowEncoder,
    FlowNetS,
    PerceptualEncoder,
    build_generator,
    video_flows,
)
from lipjax.models.factory import architecture_of
from lipjax.models.sync_expert import SyncExpert
from lipjax.train import losses

PyTree = Any
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# config.loss.flownet_losses: the losses whose gradient reaches FlowNet's weights.
FLOWNET_LOSSES = ("correlation", "all")


@dataclasses.dataclass(frozen=True)
class Networks:
    """The flax modules of one experiment; `None` where the config switches a part off."""

    generator: nn.Module  # the `models.factory` module of config.model.architecture
    flownet: FlowNetS | None
    audio_correlation: AudioDerivativeNet | None
    visual_correlation: FlowEncoder | None
    discriminator: Discriminator | None
    perceptual: PerceptualEncoder | None
    sync_expert: SyncExpert | None = None  # frozen, for loss.sync_expert > 0
    # The generator's audio normalisation (config.model.log_mel_*); the sync expert's input
    # is renormalised from it to the fixed statistics the expert was trained with.
    log_mel_stats: audio_lib.LogMelStats = audio_lib.FIXED_LOG_MEL_STATS

    @property
    def needs_flows(self) -> bool:
        """Flows feed the derivative correlation loss and the three-stream discriminator."""
        correlation = self.visual_correlation is not None and self.visual_correlation.derivative
        three = self.discriminator is not None and self.discriminator.streams == "three"
        return correlation or three


def build_networks(config: ml_collections.ConfigDict) -> Networks:
    """Modules from `config.model`, `config.loss`, `config.flownet`, `config.perceptual`."""
    model, loss = config.model, config.loss
    if model.compute_dtype not in DTYPES:
        raise ValueError(
            f"model.compute_dtype: expected one of {sorted(DTYPES)}, got {model.compute_dtype!r}"
        )
    if loss.correlation_mode not in ("derivative", "non_derivative"):
        raise ValueError(
            "loss.correlation_mode: expected 'derivative' or 'non_derivative', got "
            f"{loss.correlation_mode!r}"
        )
    if loss.discriminator not in ("three", "two", "frame_diff"):
        raise ValueError(
            "loss.discriminator: expected 'three', 'two' or 'frame_diff', got "
            f"{loss.discriminator!r}"
        )
    for field, allowed in (
        ("discriminator_layout", ("authors", "lipjax_v1")),
        ("discriminator_activation", ("relu", "leaky_relu")),
        ("flownet_losses", FLOWNET_LOSSES),
    ):
        if field in loss and loss[field] not in allowed:
            raise ValueError(f"loss.{field}: expected one of {allowed}, got {loss[field]!r}")
    common = {"dtype": DTYPES[model.compute_dtype]}
    derivative = loss.correlation_mode == "derivative"
    use_correlation = loss.correlation > 0
    use_gan = loss.adversarial > 0
    architecture = architecture_of(model)
    if architecture != "paper" and use_correlation:
        # The correlation nets read the paper generator's audio features f_s (B, T, 16, C).
        raise ValueError(
            f"loss.correlation must be 0 for model.architecture={architecture!r}: the "
            "correlation nets need the paper generator's audio features"
        )
    generator = build_generator(model)
    networks = Networks(
        generator=generator,
        flownet=FlowNetS(width=config.flownet.width, **common),
        audio_correlation=AudioDerivativeNet(model.width, derivative, **common)
        if use_correlation
        else None,
        visual_correlation=FlowEncoder(
            model.width, derivative, conv3d_impl=model.conv3d_impl, **common
        )
        if use_correlation
        else None,
        discriminator=Discriminator(
            model.width,
            loss.discriminator,
            layout=loss.get("discriminator_layout", "authors"),
            activation=loss.get("discriminator_activation", "relu"),
            conv3d_impl=model.conv3d_impl,
            **common,
        )
        if use_gan
        else None,
        perceptual=PerceptualEncoder(
            config.perceptual.width, config.perceptual.num_residual_blocks, **common
        )
        if loss.perceptual > 0
        else None,
        sync_expert=SyncExpert() if loss.get("sync_expert", 0.0) > 0 else None,
        log_mel_stats=audio_lib.model_log_mel_stats(model),
    )
    if not networks.needs_flows:
        networks = dataclasses.replace(networks, flownet=None)
    return networks


@flax.struct.dataclass
class TrainState:
    """Everything a training run carries from step to step (a pytree of arrays).

    params / batch_stats / opt_state are dicts keyed by network group: "generator",
    "correlation" (phi_s and phi_v), "flownet", "discriminator". `frozen` holds the
    perceptual encoder's and the sync expert's variables, used but never trained.
    """

    step: jax.Array
    params: dict
    batch_stats: dict
    opt_state: dict
    frozen: dict
    # {"generator": params} averaged over steps when optim.ema_decay > 0, else empty.
    ema: dict = dataclasses.field(default_factory=dict)

    def generator_for_eval(self) -> dict:
        """`params` with the averaged generator in place of the trained one, when kept."""
        if "generator" in self.ema:
            return {**self.params, "generator": self.ema["generator"]}
        return self.params


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Step-dependent settings of the GAN stage: a learning-rate multiplier that falls
    linearly from 1 at `decay_start_step` to 0 at `num_steps` (0: constant), and the decay
    of the generator's weight average (0 before `ema_start_step`)."""

    num_steps: int = 0
    decay_start_step: int = 0
    ema_decay: float = 0.0
    ema_start_step: int = 0

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Schedule:
        optim = config.optim
        return cls(
            num_steps=int(config.num_steps),
            decay_start_step=int(optim.get("decay_start_step", 0)),
            ema_decay=float(optim.get("ema_decay", 0.0)),
            ema_start_step=int(optim.get("ema_start_step", 0)),
        )

    @property
    def decays(self) -> bool:
        return 0 < self.decay_start_step < self.num_steps

    def learning_rate_scale(self, step: jax.Array) -> jax.Array:
        if not self.decays:
            return jnp.ones((), jnp.float32)
        remaining = (self.num_steps - step) / (self.num_steps - self.decay_start_step)
        return jnp.clip(remaining, 0.0, 1.0).astype(jnp.float32)

    def average_decay(self, step: jax.Array) -> jax.Array:
        return jnp.where(step < self.ema_start_step, 0.0, self.ema_decay).astype(jnp.float32)


def make_optimizers(config: ml_collections.ConfigDict) -> dict[str, optax.GradientTransformation]:
    """Adam per group with coupled L2 weight decay (PyTorch's Adam(weight_decay=...)).

    Generator and discriminator: optim.b1, optim.weight_decay (the paper); the correlation
    nets and FlowNet their own beta1 and decay (the authors' trainer), defaulting to those.
    """
    optim = config.optim

    def adam(learning_rate: float, b1: float, weight_decay: float) -> optax.GradientTransformation:
        return optax.chain(
            optax.add_decayed_weights(weight_decay),
            optax.adam(learning_rate, b1=b1, b2=optim.b2),
        )

    return {
        "generator": adam(optim.learning_rate, optim.b1, optim.weight_decay),
        "discriminator": adam(optim.learning_rate, optim.b1, optim.weight_decay),
        "correlation": adam(
            optim.correlation_learning_rate,
            optim.get("correlation_b1", optim.b1),
            optim.get("correlation_weight_decay", optim.weight_decay),
        ),
        "flownet": adam(
            optim.flownet_learning_rate,
            optim.get("flownet_b1", optim.b1),
            optim.get("flownet_weight_decay", optim.weight_decay),
        )
        if optim.train_flownet
        else optax.set_to_zero(),
    }


def _split(variables: PyTree) -> tuple[PyTree, PyTree]:
    variables = flax.core.unfreeze(variables)
    return variables["params"], variables.get("batch_stats", {})


def example_inputs(batch_size: int) -> dict[str, jax.Array]:
    """Zero inputs of the SPEC shapes, for initialisation and shape checks."""
    return {
        "audio": jnp.zeros((batch_size, 64, 128, 1), jnp.float32),
        "identity": jnp.zeros((batch_size, 64, 64, 3), jnp.float32),
        "video": jnp.zeros((batch_size, 16, 64, 64, 3), jnp.float32),
    }


def init_state(
    networks: Networks,
    config: ml_collections.ConfigDict,
    rng: jax.Array,
    flownet_params: PyTree | None = None,
    perceptual_variables: PyTree | None = None,
    sync_expert_variables: PyTree | None = None,
) -> TrainState:
    """Fresh parameters (He init) for every trained network; pretrained FlowNet and
    perceptual-encoder variables are used where given, and the sync expert's (frozen)
    where the config turns its loss on."""
    inputs = example_inputs(2)
    keys = dict(
        zip(
            ("generator", "flownet", "audio", "visual", "disc"),
            jax.random.split(rng, 5),
            strict=False,
        )
    )
    params, stats = {}, {}
    params["generator"], stats["generator"] = _split(
        networks.generator.init(keys["generator"], inputs["audio"], inputs["identity"], train=False)
    )
    video, audio_features = jax.eval_shape(
        lambda: networks.generator.apply(
            {"params": params["generator"], "batch_stats": stats["generator"]},
            inputs["audio"],
            inputs["identity"],
            train=False,
        )
    )
    flows = jnp.zeros((2, 15, 16, 16, 2), jnp.float32)
    if networks.flownet is not None:
        if flownet_params is None:
            pairs = jnp.zeros((2, 64, 64, 6), jnp.float32)
            flownet_params = networks.flownet.init(keys["flownet"], pairs)["params"]
        params["flownet"], stats["flownet"] = flownet_params, {}
    if networks.audio_correlation is not None:
        visual_input = flows if networks.visual_correlation.derivative else inputs["video"]
        audio_params, audio_stats = _split(
            networks.audio_correlation.init(
                keys["audio"], jnp.zeros(audio_features.shape, jnp.float32), train=False
            )
        )
        visual_params, visual_stats = _split(
            networks.visual_correlation.init(keys["visual"], visual_input, train=False)
        )
        params["correlation"] = {"audio": audio_params, "visual": visual_params}
        stats["correlation"] = {"audio": audio_stats, "visual": visual_stats}
    if networks.discriminator is not None:
        params["discriminator"], stats["discriminator"] = _split(
            networks.discriminator.init(
                keys["disc"], inputs["audio"], inputs["video"], flows, train=False
            )
        )
    frozen = {}
    if networks.perceptual is not None:
        if perceptual_variables is None:
            raise ValueError(
                "perceptual loss is on but no pretrained perceptual encoder was given; "
                "set perceptual.checkpoint or let the trainer pretrain it"
            )
        frozen["perceptual"] = perceptual_variables
    if networks.sync_expert is not None:
        if sync_expert_variables is None:
            raise ValueError(
                "loss.sync_expert is on but no sync expert was given; "
                "load one with lipjax.eval.lip_sync.load_expert"
            )
        frozen["sync_expert"] = sync_expert_variables
    optimizers = make_optimizers(config)
    opt_state = {name: optimizers[name].init(p) for name, p in params.items()}
    del video
    ema = {}
    if config.optim.get("ema_decay", 0.0) > 0:
        ema["generator"] = jax.tree.map(jnp.copy, params["generator"])
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=stats,
        opt_state=opt_state,
        frozen=frozen,
        ema=ema,
    )


def _apply_bn(module: nn.Module, params, stats, *args, train: bool):
    """Runs a module with BatchNorm; returns (output, updated stats)."""
    if train:
        out, updates = module.apply(
            {"params": params, "batch_stats": stats}, *args, train=True, mutable=["batch_stats"]
        )
        return out, updates["batch_stats"]
    return module.apply({"params": params, "batch_stats": stats}, *args, train=False), stats


def _flows(networks: Networks, flownet_params, video: jax.Array) -> jax.Array:
    return video_flows(networks.flownet.apply, {"params": flownet_params}, video)


def _perceptual_features(networks: Networks, frozen, frames: jax.Array) -> jax.Array:
    flat = frames.reshape((-1, *frames.shape[2:]))
    return networks.perceptual.apply(frozen["perceptual"], flat, train=False)


def _update(optimizer, grads, opt_state, params, scale=None):
    updates, opt_state = optimizer.update(grads, opt_state, params)
    if scale is not None:
        # Adam's step is proportional to its learning rate, so scaling the update is the
        # schedule, and the optimiser state keeps its structure (old checkpoints restore).
        updates = jax.tree.map(lambda u: (u * scale).astype(u.dtype), updates)
    return optax.apply_updates(params, updates), opt_state


class _Forward(NamedTuple):
    """The generator's one forward pass of a step, with its pull-back."""

    fake: jax.Array  # (B, 16, 64, 64, 3) in [-1, 1]
    audio_features: jax.Array  # f_s, which the correlation loss also reads
    regularisers: jax.Array  # (1 + R,) a zero, then each sown regulariser
    regulariser_weights: jax.Array  # (1 + R,) their loss_config weights
    regulariser_names: tuple[str, ...]
    pullback: Any  # cotangents of the three above -> generator parameter gradients
    batch_stats: PyTree  # the generator's updated BatchNorm statistics


def _generate(networks: Networks, params, stats, audio, identity, loss_config) -> _Forward:
    """Runs the generator once in training mode. Regularisers a generator sows into its
    "losses" collection (the mask sparsity of the Vondrick baseline) are returned with the
    loss_config weight of their name."""
    names: list[str] = []

    def forward(generator_params):
        (fake, audio_features), updates = networks.generator.apply(
            {"params": generator_params, "batch_stats": stats},
            audio,
            identity,
            train=True,
            mutable=["batch_stats", "losses"],
        )
        sown = flax.core.unfreeze(updates.get("losses", {}))
        names[:] = sorted(sown)
        regularisers = jnp.stack(
            [jnp.zeros((), jnp.float32)]
            + [sum(jnp.asarray(v, jnp.float32) for v in sown[name]) for name in names]
        )
        return (fake, audio_features, regularisers), updates["batch_stats"]

    (fake, audio_features, regularisers), pullback, new_stats = jax.vjp(
        forward, params, has_aux=True
    )
    weights = jnp.asarray([0.0] + [loss_config.get(name, 0.0) for name in names], jnp.float32)
    return _Forward(fake, audio_features, regularisers, weights, tuple(names), pullback, new_stats)


def _discriminator_loss(
    d_params, d_stats, *, networks, audio, video, fake, real_flows, fake_flows, loss_config
):
    """Eq. 4: real pairs, generated videos, and real videos with mismatched audio (another
    clip of the batch: rolling the batch gives k != j). Returns (loss, (stats, accuracy))."""
    disc = functools.partial(_apply_bn, networks.discriminator, d_params, train=True)
    real_logits, d_stats = disc(d_stats, audio, video, real_flows)
    fake_logits, d_stats = disc(d_stats, audio, fake, fake_flows)
    accuracies = [jnp.mean(real_logits > 0), jnp.mean(fake_logits < 0)]
    mismatch_logits = None  # mismatch_weight 0: Vondrick et al.'s plain GAN objective
    if loss_config.mismatch_weight > 0:
        mismatched_audio = jnp.roll(audio, 1, axis=0)
        mismatch_logits, d_stats = disc(d_stats, mismatched_audio, video, real_flows)
        accuracies.append(jnp.mean(mismatch_logits < 0))
    loss = losses.discriminator_loss(
        real_logits,
        fake_logits,
        mismatch_logits,
        loss_config.fake_weight,
        loss_config.mismatch_weight,
    )
    return loss, (d_stats, sum(accuracies) / len(accuracies))


def _generator_loss(
    fake,
    audio_features,
    correlation_params,
    flownet_params,
    *,
    networks,
    frozen,
    stats,
    d_params,
    audio,
    video,
    loss_config,
):
    """Eq. 1-3 and the correlation loss, as a function of everything the generator side
    updates: the generated video and audio features (pulled back into the generator), the
    correlation nets and FlowNet. Returns (total, (terms, new correlation stats))."""
    terms, new_stats = {}, {}
    terms["pixel"] = losses.pixel_loss(fake, video)
    if networks.perceptual is not None:
        terms["perceptual"] = losses.perceptual_loss(
            _perceptual_features(networks, frozen, video),
            _perceptual_features(networks, frozen, fake),
        )
    fake_flows = _flows(networks, flownet_params, fake) if networks.needs_flows else None
    if networks.audio_correlation is not None:
        terms["correlation"], new_stats["correlation"] = _correlation_loss(
            networks,
            correlation_params,
            stats["correlation"],
            audio_features,
            flownet_params,
            video,
            fake,
            fake_flows,
        )
    if networks.discriminator is not None:
        disc_flows = None
        if networks.discriminator.streams == "three":
            disc_flows = fake_flows
            if loss_config.get("flownet_losses", "correlation") == "correlation":
                # The flows keep their gradient w.r.t. the generated video, not w.r.t.
                # FlowNet's weights: XLA shares the forward pass with `fake_flows`.
                disc_flows = _flows(networks, jax.lax.stop_gradient(flownet_params), fake)
        fake_logits, _ = _apply_bn(
            networks.discriminator,
            d_params,
            stats["discriminator"],
            audio,
            fake,
            disc_flows,
            train=True,
        )
        terms["adversarial"] = losses.generator_adversarial_loss(fake_logits)
    if networks.sync_expert is not None:
        expert_audio = networks.log_mel_stats.renormalize(audio, audio_lib.FIXED_LOG_MEL_STATS)
        terms["sync_expert"] = losses.expert_sync_loss(
            networks.sync_expert, frozen["sync_expert"], fake, expert_audio
        )
    weights = {
        "pixel": loss_config.pixel,
        "perceptual": loss_config.perceptual,
        "correlation": loss_config.correlation,
        "adversarial": loss_config.adversarial,
        "sync_expert": loss_config.get("sync_expert", 0.0),
    }
    total = sum(weights[name] * value for name, value in terms.items())
    return total, (terms, new_stats)


def _correlation_loss(
    networks, correlation_params, c_stats, audio_features, flownet_params, video, fake, fake_flows
):
    """l_corr (Sec. 3.2): phi_s of the audio features against phi_v of the real and of the
    generated video's flows (or frames, "non_derivative"), half each."""
    phi_s, audio_stats = _apply_bn(
        networks.audio_correlation,
        correlation_params["audio"],
        c_stats["audio"],
        audio_features,
        train=True,
    )
    if networks.visual_correlation.derivative:
        real_visual, fake_visual = _flows(networks, flownet_params, video), fake_flows
    else:
        real_visual, fake_visual = video, fake
    visual = functools.partial(
        _apply_bn, networks.visual_correlation, correlation_params["visual"], train=True
    )
    phi_v_real, visual_stats = visual(c_stats["visual"], real_visual)
    phi_v_fake, visual_stats = visual(visual_stats, fake_visual)
    loss = 0.5 * losses.correlation_loss(phi_s, phi_v_real) + 0.5 * losses.correlation_loss(
        phi_s, phi_v_fake
    )
    return loss, {"audio": audio_stats, "visual": visual_stats}


def _averaged(ema: dict, generator_params, decay: jax.Array) -> dict:
    """The generator's weight average after this step (empty when there is none)."""
    if "generator" not in ema:
        return ema
    return {
        "generator": jax.tree.map(
            lambda average, new: (decay * average + (1 - decay) * new).astype(new.dtype),
            ema["generator"],
            generator_params,
        )
    }


def train_step(
    state: TrainState,
    batch: dict[str, jax.Array],
    *,
    networks: Networks,
    optimizers: dict[str, optax.GradientTransformation],
    loss_config: ml_collections.ConfigDict,
    schedule: Schedule | None = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One discriminator update, then one generator + correlation + FlowNet update.

    batch: `audio` (B, 64, 128, 1), `identity` (B, 64, 64, 3), `video` (B, 16, 64, 64, 3),
    all float32 (the video and identity in [-1, 1]). `schedule` (default: constant learning
    rates) scales every update and decays the generator's weight average kept in
    `state.ema`. Returns the new state and scalar metrics.
    """
    schedule = schedule or Schedule()
    lr_scale = schedule.learning_rate_scale(state.step) if schedule.decays else None
    audio, identity, video = batch["audio"], batch["identity"], batch["video"]
    params, stats = dict(state.params), dict(state.batch_stats)
    opt_state = dict(state.opt_state)
    metrics = {}

    forward = _generate(
        networks, params["generator"], stats["generator"], audio, identity, loss_config
    )
    stats["generator"] = forward.batch_stats
    flownet_params = params.get("flownet")

    if networks.discriminator is not None:
        fake = jax.lax.stop_gradient(forward.fake)
        real_flows = fake_flows = None
        if networks.discriminator.streams == "three":
            real_flows = jax.lax.stop_gradient(_flows(networks, flownet_params, video))
            fake_flows = _flows(networks, flownet_params, fake)
        (d_loss, (stats["discriminator"], d_accuracy)), d_grads = jax.value_and_grad(
            functools.partial(
                _discriminator_loss,
                networks=networks,
                audio=audio,
                video=video,
                fake=fake,
                real_flows=real_flows,
                fake_flows=fake_flows,
                loss_config=loss_config,
            ),
            has_aux=True,
        )(params["discriminator"], stats["discriminator"])
        params["discriminator"], opt_state["discriminator"] = _update(
            optimizers["discriminator"],
            d_grads,
            opt_state["discriminator"],
            params["discriminator"],
            lr_scale,
        )
        metrics.update(discriminator_loss=d_loss, discriminator_accuracy=d_accuracy)

    # The generator's own gradient comes from pulling the gradients w.r.t. the generated
    # video and audio features back through `forward.pullback`.
    objective = functools.partial(
        _generator_loss,
        networks=networks,
        frozen=state.frozen,
        stats=stats,
        d_params=params.get("discriminator"),
        audio=audio,
        video=video,
        loss_config=loss_config,
    )
    (g_loss, (terms, new_stats)), grads = jax.value_and_grad(
        objective, argnums=(0, 1, 2, 3), has_aux=True
    )(forward.fake, forward.audio_features, params.get("correlation"), flownet_params)
    fake_grad, audio_features_grad, correlation_grads, flownet_grads = grads
    (generator_grads,) = forward.pullback(
        (fake_grad, audio_features_grad, forward.regulariser_weights)
    )
    g_loss = g_loss + jnp.sum(forward.regulariser_weights * forward.regularisers)
    terms.update(
        {name: forward.regularisers[i + 1] for i, name in enumerate(forward.regulariser_names)}
    )
    params["generator"], opt_state["generator"] = _update(
        optimizers["generator"],
        generator_grads,
        opt_state["generator"],
        params["generator"],
        lr_scale,
    )
    if networks.audio_correlation is not None:
        stats["correlation"] = new_stats["correlation"]
        params["correlation"], opt_state["correlation"] = _update(
            optimizers["correlation"],
            correlation_grads,
            opt_state["correlation"],
            params["correlation"],
            lr_scale,
        )
    if flownet_params is not None:
        params["flownet"], opt_state["flownet"] = _update(
            optimizers["flownet"], flownet_grads, opt_state["flownet"], flownet_params, lr_scale
        )
    metrics["generator_loss"] = g_loss
    metrics.update({f"loss_{name}": value for name, value in terms.items()})
    metrics["generator_grad_norm"] = optax.global_norm(generator_grads)
    if lr_scale is not None:
        metrics["learning_rate_scale"] = lr_scale
    ema = _averaged(state.ema, params["generator"], schedule.average_decay(state.step))
    new_state = state.replace(
        step=state.step + 1, params=params, batch_stats=stats, opt_state=opt_state, ema=ema
    )
    return new_state, metrics


def generate_videos(
    networks: Networks, params: PyTree, batch_stats: PyTree, audio: jax.Array, identity: jax.Array
) -> jax.Array:
    """Inference: (B, 16, 64, 64, 3) float32 in [-1, 1] from audio windows and identities."""
    video, _ = networks.generator.apply(
        {"params": params["generator"], "batch_stats": batch_stats["generator"]},
        audio,
        identity,
        train=False,
    )
    return video.astype(jnp.float32)
