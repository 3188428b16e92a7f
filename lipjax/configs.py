"""Defaults shared by every experiment; files in `experiments/` start from `base_config()`."""

from __future__ import annotations

import importlib.util
import pathlib
import tempfile

import ml_collections

# experiments/ of a source checkout (the config files are not part of the installed package).
EXPERIMENTS_DIR = pathlib.Path(__file__).resolve().parents[1] / "experiments"


def load_experiment(name: str, variant: str = "") -> ml_collections.ConfigDict:
    """`get_config(variant)` of experiments/NAME.py, loaded from the file as
    `python -m lipjax.main --config=experiments/NAME.py:VARIANT` does."""
    path = EXPERIMENTS_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"experiment {name!r}: no config file {path}")
    spec = importlib.util.spec_from_file_location(f"lipjax_experiment_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant)


def base_config() -> ml_collections.ConfigDict:
    """The paper's settings (docs/design.md) at the paper's model sizes, on synthetic_lips/small."""
    config = ml_collections.ConfigDict()
    config.stage = "gan"  # "gan" (the lip generator), "flownet" or "perceptual" (pretraining)
    config.dataset = "synthetic_lips/small"  # TFDS "name/config"
    config.data_dir = ""  # TFDS data dir; "" = $TFDS_DATA_DIR or ~/tensorflow_datasets
    config.build_if_missing = True  # build the corpus if it is not there: synthetic_lips,
    # or a real corpus from `manual_dir`
    config.manual_dir = ""  # real corpora: the manual download (used with build_if_missing)
    config.seed = 0  # model init, data order, identity frames
    config.batch_size = 24  # global batch (authors' code); split over all devices
    config.num_steps = 100_000  # generator/discriminator iterations

    config.model = ml_collections.ConfigDict()
    # "paper" (Chen et al.'s generator), or a Table 3 baseline: "chung" (Chung et al. 2017,
    # frame by frame) or "vondrick" (conditional two-stream video GAN after Vondrick et al.
    # 2016). Training, evaluation and generate() build it through models.build_generator.
    config.model.architecture = "paper"
    config.model.width = 1.0  # channel multiplier of generator, discriminator, correlation nets
    config.model.generator_residual_blocks = 9  # decoder residual blocks (paper: 9; "paper" only)
    config.model.upsample = "transposed"  # "transposed" (paper) or "subpixel"
    config.model.identity_skip = False  # decoder predicts a residual on the identity image
    # How the networks' 3D convolutions are computed: "native", "taps" (a sum of 2D
    # convolutions) or "auto" (the fastest on the backend the step runs on, see
    # models.layers.FASTEST_IMPLS); all compute the same function of the same parameters.
    config.model.conv3d_impl = "auto"
    # How model.upsample="transposed" is computed: "native" (lax.conv_transpose), "phases"
    # (its exact sub-pixel decomposition: a stride-1 conv to 4x channels + depth-to-space)
    # or "auto" (the backend's fastest); the same function of the same parameters.
    config.model.upsample_impl = "auto"
    # Recompute the generator's residual blocks in the backward pass instead of storing
    # their activations: less memory for a little more compute, the same function.
    config.model.remat = False
    config.model.output_kernel = 7  # last Conv3d of the decoder, k on every axis (paper: 7;
    # "paper" only)
    config.model.audio_width = 0.0  # audio encoder's own multiplier; 0 = model.width ("paper")
    # With identity_skip: the decoder also predicts a flow per frame that warps the identity
    # image before its residual is added, so lips move by displacing pixels ("paper" only).
    config.model.warp_identity = False
    config.model.warp_flow_scale = 1.0  # pixels of that flow per unit of the decoder's output
    # The identity encoder's 32 and 64 px maps concatenated into the decoder at those sizes
    # (U-Net skips, as in Chung et al. 2017; "paper" only; not in the paper).
    config.model.identity_unet_skips = False
    # "paper": audio frequency along the image width (Fig. 3); "dense": one dense layer maps
    # each frame's audio features to a code copied to every pixel ("paper" only).
    config.model.audio_fusion = "paper"
    # With audio_fusion "paper": the image axis audio frequency lies along, "width" (lipjax;
    # the paper does not say) or "height" (the authors' code; docs/FIDELITY.md). Kept
    # "width" so that runs and weights trained before the option keep their function.
    config.model.audio_frequency_axis = "width"
    # Frames the audio window starts after the video window it drives (0 = aligned, as the
    # paper). Lips lead the sound (paper Sec. 4, Fig. 4; synthetic_lips: by 0-4 frames) and
    # the generator's temporal receptive field is centred, so a look-ahead of the mean lead
    # puts the audio of each frame's lip shape where the generator sees it best.
    config.model.audio_lookahead_frames = 0
    config.model.compute_dtype = "float32"  # "float32" or "bfloat16" (parameters stay float32)
    # The audio input is (log-mel dB - log_mel_mean) / log_mel_std. Unset (None), training
    # sets both to its corpus's train-split statistics (stored with the dataset when it is
    # built) and saves them with the run, so that evaluation and generate() normalise alike.
    # Runs and weights saved before these fields use lipjax.data.audio.FIXED_LOG_MEL_STATS.
    config.model.log_mel_mean = ml_collections.config_dict.placeholder(float)
    config.model.log_mel_std = ml_collections.config_dict.placeholder(float)

    config.loss = ml_collections.ConfigDict()
    config.loss.pixel = 0.5  # λ1 of Eq. 2 (the authors' code used 0.2)
    config.loss.perceptual = 1.0  # λ2
    config.loss.adversarial = 1.0  # λ3; 0 disables the discriminator entirely
    config.loss.correlation = 1.0  # weight of l_corr; 0 disables the correlation nets
    config.loss.correlation_mode = "derivative"  # or "non_derivative" (Table 2 (f))
    config.loss.discriminator = "three"  # "three", "two" (Table 2 g, h) or "frame_diff" (i)
    # "authors": the discriminators of the authors' code layer for layer (three-stream
    # 54,278,881 parameters, two-stream 55,593,249); "lipjax_v1": lipjax before issue 24
    # (no BatchNorm on the first audio conv, 512-channel video stream). docs/FIDELITY.md.
    config.loss.discriminator_layout = "authors"
    config.loss.discriminator_activation = "relu"  # authors' code; "leaky_relu" (0.2): v1
    # Losses whose gradient reaches FlowNet's weights: "correlation" (l_corr only, as the
    # authors' full trainer; the discriminator's flow stream still passes the adversarial
    # gradient on to the generator) or "all" (also l_gen through the flow stream, lipjax v1).
    config.loss.flownet_losses = "correlation"
    config.loss.fake_weight = 0.5  # λp of Eq. 4
    config.loss.mismatch_weight = 0.5  # λu of Eq. 4 (mismatched audio); 0 skips that pass
    config.loss.mask_sparsity = 0.1  # λ|m|_1 on the foreground mask ("vondrick" only: the
    # sparsity prior of Vondrick et al. 2016; the value 0.1 is our choice)
    config.loss.sync_expert = 0.0  # weight of an expert lip-sync loss on the generated clip
    # (Prajwal et al. 2020, "A lip sync expert is all you need"), with a frozen SyncNet-style
    # expert; not in the paper (0 = off). The shipped expert also scores LSE-D / LSE-C, so
    # those stop being independent of training when this is on (LMD stays independent).
    config.loss.sync_expert_path = ""  # the expert's folder; "" = the one shipped in lipjax

    config.optim = ml_collections.ConfigDict()
    config.optim.learning_rate = 2e-4  # generator and discriminator (Adam)
    config.optim.b1 = 0.5
    config.optim.b2 = 0.999
    config.optim.weight_decay = 4e-4  # coupled L2, as PyTorch's Adam
    config.optim.correlation_learning_rate = 1e-4  # phi_s, phi_v
    # The paper gives one Adam setting; the authors' trainer gives phi_s, phi_v and FlowNet
    # their own (trainer_corr_perceptual_difference.py lines 50-54).
    config.optim.correlation_b1 = 0.9  # Adam beta1 of phi_s, phi_v (b2 is optim.b2)
    config.optim.correlation_weight_decay = 5e-4  # coupled L2 of phi_s, phi_v
    config.optim.flownet_learning_rate = 1e-4  # FlowNet keeps training in the GAN stage
    config.optim.flownet_b1 = 0.9  # Adam beta1 of FlowNet in the GAN stage (b2 is optim.b2)
    config.optim.flownet_weight_decay = 4e-4  # coupled L2 of FlowNet in the GAN stage
    config.optim.train_flownet = True  # False freezes the pretrained FlowNet
    config.optim.decay_start_step = 0  # from this step all learning rates fall linearly to
    # 0 at num_steps; 0 keeps them constant (the paper's schedule)
    config.optim.ema_decay = 0.0  # > 0 keeps an exponential moving average of the
    # generator's weights, used for validation, the best checkpoint and exported weights
    # (Yazici et al. 2019, "The unusual effectiveness of averaging in GAN training"); 0 = off
    config.optim.ema_start_step = 0  # the average is a copy of the weights until this step

    config.flownet = ml_collections.ConfigDict()
    config.flownet.width = 1.0  # FlowNetS channel multiplier
    config.flownet.checkpoint = ""  # pretrained FlowNet; "" = pretrain in WORKDIR/pretrain
    config.flownet.synthetic_steps = 20_000  # pretraining on generated shapes
    config.flownet.finetune_steps = 5_000  # fine-tuning on lip crops (TV-L1 targets)
    config.flownet.batch_size = 16
    config.flownet.synthetic_learning_rate = 1e-3  # generated shapes (1e-4 barely moves)
    config.flownet.learning_rate = 1e-4  # fine-tuning on lip crops (the paper's FlowNet lr)
    config.flownet.weight_decay = 4e-4
    # Fine-tuning EPE over pixels: "mean" (the authors' code) or "sum" (FlowNet's, lipjax v1)
    config.flownet.finetune_epe_reduction = "mean"
    # Targets of the lip-crop fine-tuning: "tvl1" (Zach et al. 2007, scikit-image) or
    # "farneback" (Farneback 2003, OpenCV, the authors' choice; pip install -e ".[farneback]").
    config.flownet.finetune_targets = "tvl1"
    config.flownet.output_init_scale = 0.1  # smaller first flows: He init gives 4x too large
    config.flownet.finetune_pairs = 2_000  # lip-crop pairs given classical-flow targets
    config.flownet.validation_pairs = 256  # held-out lip pairs scored against TV-L1
    config.flownet.synthetic_eval_pairs = 256  # held-out generated pairs (exact flow)
    config.flownet.tvl1_eval_pairs = 64  # of those, also scored with TV-L1 for reference
    config.flownet.target_workers = 2  # processes computing TV-L1 targets
    config.flownet.small_motion_share = 0.4  # generated pairs moving <= 2 px, like lip crops
    # Stage A draws batches from a pool of generated pairs, renewing a few per step
    # (rendering every pair anew cost more than a training step on 2 CPU cores).
    config.flownet.synthetic_pool_size = 512
    config.flownet.synthetic_refresh_per_step = 4
    config.flownet.finetune_synthetic_share = 0.25  # generated pairs in each fine-tuning batch
    config.flownet.log_every = 50  # steps between logged losses
    config.flownet.checkpoint_every = 250  # steps between resumable checkpoints

    config.perceptual = ml_collections.ConfigDict()
    config.perceptual.width = 1.0  # autoencoder channel multiplier
    config.perceptual.num_residual_blocks = 6  # paper: 6
    config.perceptual.checkpoint = ""  # pretrained autoencoder; "" = train in WORKDIR/pretrain
    config.perceptual.steps = 10_000
    config.perceptual.batch_size = 32
    config.perceptual.learning_rate = 1e-3
    config.perceptual.upsample = "subpixel"  # decoder only; it is discarded after training
    config.perceptual.validation_frames = 256  # reconstruction PSNR is reported on these
    config.perceptual.frames_per_utterance = 16  # training frames kept from each utterance
    config.perceptual.log_every = 50  # steps between logged losses
    config.perceptual.checkpoint_every = 200  # steps between resumable checkpoints

    config.eval = ml_collections.ConfigDict()
    config.eval.split = "validation"  # periodic evaluation split
    config.eval.every_steps = 1_000
    # Validation during training scores this many global batches, spread evenly over the
    # split (0 = the whole split); lipjax.evaluate always scores a whole split.
    config.eval.max_batches = 8
    # CPBD sharpness during training (CPU only, ~1.7 ms a frame, 3 clips a window); it does
    # not choose the best checkpoint, and lipjax.evaluate scores it.
    config.eval.sharpness = False
    config.eval.num_samples = 4  # clips in the sample videos written at every evaluation

    config.input = ml_collections.ConfigDict()
    config.input.read_threads = 1  # grain threads reading batches ahead (per process)
    config.input.worker_processes = 0  # > 0: read in that many processes (grain
    # mp_prefetch) instead; resume with the same number

    config.log_every_steps = 50  # TensorBoard scalars and the progress bar
    config.checkpoint_every_steps = 500
    config.keep_checkpoints = 3  # latest checkpoints kept (the best is kept as well)
    return config


def cpu_sized(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrinks a config to models a 2-core CPU trains (why each choice:
    experiments/RESULTS.md, "CPU-sized models")."""
    config.batch_size = 8
    config.model.width = 0.125
    config.model.generator_residual_blocks = 2
    config.model.upsample = "subpixel"  # about 2x faster than transposed on XLA's CPU
    config.model.conv3d_impl = "taps"
    config.model.output_kernel = 3  # k7 at 64x64 would be 60% of the generator's FLOPs
    config.model.identity_skip = True  # learning at CPU size needs it (experiments/RESULTS.md)
    # The paper's loss weights stay: lambda_3 = 0.1 instead of 1 gave cleaner frames but less
    # lip motion (experiments/RESULTS.md, "CPU-sized models").
    # The pretrained FlowNet stays fixed: training it through the GAN stage doubles the step
    # time on CPU (weight gradients of 4 flow passes over B x 15 frame pairs).
    config.optim.train_flownet = False
    config.flownet.width = 0.25
    config.flownet.synthetic_steps = 1_000
    config.flownet.finetune_steps = 300
    config.flownet.finetune_pairs = 400
    config.perceptual.width = 0.25
    config.perceptual.num_residual_blocks = 3
    config.perceptual.steps = 400
    config.perceptual.batch_size = 16
    return config


def lipjax_v1(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Restores lipjax's choices from before issue 24 (docs/FIDELITY.md), with which the rows
    of experiments/RESULTS.md up to then were trained."""
    config.loss.discriminator_layout = "lipjax_v1"
    config.loss.discriminator_activation = "leaky_relu"
    config.optim.correlation_b1 = config.optim.b1
    config.optim.correlation_weight_decay = config.optim.weight_decay
    config.optim.flownet_b1 = config.optim.b1
    config.optim.flownet_weight_decay = config.optim.weight_decay
    config.loss.flownet_losses = "all"
    config.flownet.finetune_epe_reduction = "sum"
    return config


def table_config(variant: str = "") -> ml_collections.ConfigDict:
    """What every experiment of the paper's Tables 2 and 3 starts from (each
    `experiments/table*.py` then sets what its column changes). Variants: "" (GRID, paper
    sizes), "synthetic" (CPU-sized on synthetic_lips/small), "synthetic_v1" (the same with
    `lipjax_v1`'s choices, those of experiments/RESULTS.md's rows), "smoke" (a few steps on
    synthetic_lips/tiny)."""
    if variant == "":
        config = base_config()
        config.dataset = "grid"
    elif variant in ("synthetic", "synthetic_v1", "smoke"):
        config = cpu_sized(base_config())
        config.num_steps = 20_000
        config.eval.every_steps = 500
        if variant == "smoke":
            smoke(config)
        if variant == "synthetic_v1":  # the choices of experiments/RESULTS.md's rows
            lipjax_v1(config)
    else:
        raise ValueError(
            f"variant: expected '', 'synthetic', 'synthetic_v1' or 'smoke', got {variant!r}"
        )
    return config


def dataset_config(dataset: str, variant: str = "") -> ml_collections.ConfigDict:
    """The full model at paper sizes on a real corpus (a manual download, built first);
    variant "smoke" runs the same code path for a few steps of tiny models on the builder's
    dummy data (built on first use)."""
    config = base_config()
    config.dataset = dataset
    config.build_if_missing = False
    if variant == "smoke":
        smoke(config)
        # The builder's own dummy files (our synthetic export in the corpus's layout), built
        # on first use into a data dir of their own so they never mix with the real corpus.
        config.dataset = dataset
        import data_pipeline  # loads TFDS: only the smoke variant needs its path

        dummy_data = pathlib.Path(data_pipeline.__file__).parent / dataset / "dummy_data"
        config.manual_dir = str(dummy_data)
        config.data_dir = str(pathlib.Path(tempfile.gettempdir()) / "lipjax_dummy_tfds")
        config.build_if_missing = True
    elif variant:
        raise ValueError(f"variant: expected '' or 'smoke', got {variant!r}")
    return config


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A few steps of tiny models on synthetic_lips/tiny: checks a config end to end."""
    config.dataset = "synthetic_lips/tiny"
    config.batch_size = 8
    config.num_steps = 4
    config.model.width = 0.125
    config.model.generator_residual_blocks = 1
    config.model.upsample = "subpixel"
    config.model.conv3d_impl = "taps"
    config.flownet.width = 0.125
    config.flownet.synthetic_steps = 4
    config.flownet.finetune_steps = 2
    config.flownet.finetune_pairs = 8
    config.perceptual.width = 0.125
    config.perceptual.num_residual_blocks = 1
    config.perceptual.steps = 4
    config.perceptual.batch_size = 8
    config.perceptual.validation_frames = 8
    config.flownet.validation_pairs = 8
    config.flownet.synthetic_eval_pairs = 8
    config.flownet.tvl1_eval_pairs = 4
    config.flownet.target_workers = 1
    config.eval.every_steps = 2
    config.eval.max_batches = 1
    config.eval.num_samples = 2
    config.checkpoint_every_steps = 2
    config.log_every_steps = 1
    return config
