"""Training and evaluation loop: `train_and_evaluate(config, workdir)`.

Stages (config.stage): "flownet" and "perceptual" pretrain those networks; "gan" trains
the lip generator with the losses of Eq. 2 and 4, pretraining FlowNet and the perceptual
autoencoder first (in WORKDIR/pretrain) unless their checkpoints are given. The run
resumes from WORKDIR/checkpoints after a crash or kill, and saves on SIGTERM.

With several processes (`jax.distributed`, lipjax.main's flags) every process runs this
same function on its own shard of the data; process 0 alone builds the dataset, pretrains
and writes logs, samples and reports (lipjax.multihost), and all of them stop after the
same step when any one gets SIGTERM.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import pathlib
import time
from typing import Any

import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from tqdm import tqdm

from lipjax import checkpointing, multihost, sharding
from lipjax.data import audio, datasets, pipeline, video_io
from lipjax.data.audio import SAMPLE_RATE, SAMPLES_PER_VIDEO_FRAME
from lipjax.eval import evaluation
from lipjax.train import train_step


def prepare_workdir(workdir: str) -> pathlib.Path:
    """Creates WORKDIR, or raises a clear error when it cannot be written."""
    path = pathlib.Path(workdir).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_test_process{jax.process_index()}"  # one file per process
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise PermissionError(
            f"workdir: cannot write to {path} ({error.strerror}); choose another --workdir"
        ) from error
    return path


def ensure_dataset(config: ml_collections.ConfigDict) -> None:
    """Builds the synthetic corpus if it is missing (and allowed); else a clear error."""
    builder = datasets.open_builder(config.dataset, config.data_dir, prepared=False)
    if builder.is_prepared():
        return
    synthetic = config.dataset.startswith("synthetic_lips")
    if config.build_if_missing and (synthetic or config.get("manual_dir")):
        logging.info("Building %s (first run only) ...", config.dataset)
        print(f"Building {config.dataset} in {builder.data_dir} (first run only) ...", flush=True)
        download = None
        if not synthetic:
            download = tfds.download.DownloadConfig(manual_dir=config.manual_dir)
        builder.download_and_prepare(download_config=download)
        return
    datasets.open_builder(config.dataset, config.data_dir)  # raises: how to build it


def ensure_dataset_once(config: ml_collections.ConfigDict) -> None:
    """`ensure_dataset` on process 0 while the others wait, then on the others (a no-op
    where they share its file system; a build of their own where they do not)."""
    multihost.run_on_primary("dataset", lambda: ensure_dataset(config))
    if not multihost.is_primary():
        ensure_dataset(config)


def with_log_mel_stats(
    config: ml_collections.ConfigDict, workdir: pathlib.Path
) -> ml_collections.ConfigDict:
    """`config`, or a copy of it whose unset `model.log_mel_mean` / `model.log_mel_std` are
    the training corpus's log-mel statistics (saved with the run: evaluation and generate()
    normalise as training did)."""
    if config.model.log_mel_mean is not None and config.model.log_mel_std is not None:
        return config
    # Only process 0 may cache statistics it had to compute (datasets built without them).
    cache_dir = workdir / "data_index" if multihost.is_primary() else None
    stats = pipeline.dataset_log_mel_stats(config.dataset, config.data_dir or None, cache_dir)
    config = copy.deepcopy(config)
    config.model.log_mel_mean, config.model.log_mel_std = stats.mean, stats.std
    logging.info("log-mel normalisation of %s: mean %.4f dB, std %.4f dB", config.dataset,
                 stats.mean, stats.std)  # fmt: skip
    return config


def _pretrained(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> tuple[Any, Any, Any]:
    """FlowNet params, perceptual-encoder variables (pretraining those two if needed, on
    process 0 while the others wait) and the sync expert's variables (None where a network
    is not used). Every process loads them onto its own first device."""
    from lipjax.train import pretrain_flownet, pretrain_perceptual

    networks_need = train_step.build_networks(config)
    flownet_params = perceptual_variables = None
    if networks_need.flownet is not None:
        path = config.flownet.checkpoint
        if not path:
            multihost.run_on_primary(
                "pretrain_flownet", lambda: pretrain_flownet.run(config, str(workdir / "pretrain"))
            )
            path = str(workdir / "pretrain" / "flownet")
        flownet_params = pretrain_flownet.load_flownet(path)
    if networks_need.perceptual is not None:
        path = config.perceptual.checkpoint
        if not path:
            multihost.run_on_primary(
                "pretrain_perceptual",
                lambda: pretrain_perceptual.run(config, str(workdir / "pretrain")),
            )
            path = str(workdir / "pretrain" / "perceptual")
        _, perceptual_variables = pretrain_perceptual.load_perceptual_encoder(path)
    sync_expert_variables = None
    if networks_need.sync_expert is not None:
        sync_expert_variables = _load_sync_expert(config, networks_need.sync_expert)
    return flownet_params, perceptual_variables, sync_expert_variables


def _load_sync_expert(config: ml_collections.ConfigDict, expected) -> Any:
    """The sync expert's variables for loss.sync_expert, checked against the module built."""
    from lipjax.eval import lip_sync

    path = config.loss.get("sync_expert_path", "") or None
    module, variables = lip_sync.load_expert(path)
    if lip_sync.architecture_of(module) != lip_sync.architecture_of(expected):
        raise ValueError(
            f"loss.sync_expert_path: the expert at {path or 'the shipped path'} has the "
            f"architecture {lip_sync.architecture_of(module)}, lipjax's loss builds "
            f"{lip_sync.architecture_of(expected)}"
        )
    return variables


class _Writers:
    """TensorBoard event files (tensorboardX) and a metrics.jsonl beside them."""

    def __init__(self, workdir: pathlib.Path):
        from tensorboardX import SummaryWriter

        self.primary = jax.process_index() == 0
        self.tensorboard = SummaryWriter(str(workdir / "tensorboard")) if self.primary else None
        self.jsonl = (workdir / "metrics.jsonl").open("a") if self.primary else None

    def scalars(self, step: int, values: dict[str, float], prefix: str) -> None:
        if not self.primary:
            return
        for name, value in values.items():
            self.tensorboard.add_scalar(f"{prefix}/{name}", value, step)
        self.jsonl.write(json.dumps({"step": step, "split": prefix, **values}) + "\n")
        self.jsonl.flush()

    def close(self) -> None:
        if self.primary:
            self.tensorboard.close()
            self.jsonl.close()


def write_samples(
    result: evaluation.EvalResult, source, step: int, directory: pathlib.Path
) -> list[pathlib.Path]:
    """real | generated | identity clips as mp4 with their speech, and one GIF of all."""
    directory.mkdir(parents=True, exist_ok=True)
    samples = result.samples
    grid = evaluation.sample_grid(samples)
    gif = directory / f"step_{step:07d}.gif"
    video_io.write_gif(gif, video_io.upscale(grid, 2))
    written = [gif]
    for row in range(len(samples["real"])):
        clip = evaluation.sample_grid({k: v[row : row + 1] for k, v in samples.items()})
        utterance, start = int(samples["utterance_index"][row]), int(samples["start_frame"][row])
        sound = None
        if source is not None and utterance >= 0:
            waveform = np.asarray(source[utterance]["waveform"])
            sound = waveform[
                start * SAMPLES_PER_VIDEO_FRAME : (start + len(clip)) * SAMPLES_PER_VIDEO_FRAME
            ]
        path = directory / f"step_{step:07d}_clip{row}.mp4"
        video_io.write_mp4(path, video_io.upscale(clip, 4), 25, sound, SAMPLE_RATE)
        written.append(path)
    return written


def plot_curves(workdir: pathlib.Path) -> pathlib.Path | None:
    """losses.png from metrics.jsonl: training losses and validation LMD against static."""
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    train = [r for r in rows if r["split"] == "train"]
    evals = [r for r in rows if r["split"] == "eval"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for key in sorted({k for r in train for k in r if k.startswith("loss_")} | {"generator_loss"}):
        points = [(r["step"], r[key]) for r in train if key in r]
        if points:
            left.plot(*zip(*points, strict=False), label=key, lw=1)
    left.set(xlabel="step", title="training losses", yscale="log")
    left.legend(fontsize=7)
    if evals:
        steps = [r["step"] for r in evals]
        right.plot(steps, [r["lmd"] for r in evals], marker=".", label="model LMD")
        if any("trained_lmd" in r for r in evals):
            points = [(r["step"], r["trained_lmd"]) for r in evals if "trained_lmd" in r]
            right.plot(*zip(*points, strict=False), marker=".", label="trained weights LMD")
        right.plot(steps, [r["static_lmd"] for r in evals], ls="--", label="static LMD")
        right.set(xlabel="step", ylabel="LMD (px)", title="validation")
        right.legend(fontsize=7)
    figure.tight_layout()
    out = workdir / "losses.png"
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs the configured stage in `workdir`; returns the final metrics."""
    path = prepare_workdir(workdir)
    if config.stage in ("flownet", "perceptual"):
        ensure_dataset_once(config)
        from lipjax.train import pretrain_flownet, pretrain_perceptual

        stage = pretrain_flownet if config.stage == "flownet" else pretrain_perceptual
        # One process pretrains (it is small next to the GAN stage); its report for all.
        multihost.run_on_primary(config.stage, lambda: stage.run(config, str(path)))
        return stage.run(config, str(path))  # the saved report, read back
    if config.stage != "gan":
        raise ValueError(f"stage: expected 'gan', 'flownet' or 'perceptual', got {config.stage!r}")
    ensure_dataset_once(config)
    config = with_log_mel_stats(config, path)
    if multihost.is_primary():
        (path / "config.json").write_text(config.to_json_best_effort(indent=2))
    flownet_params, perceptual_variables, sync_expert_variables = _pretrained(config, path)
    return _train_gan(config, path, flownet_params, perceptual_variables, sync_expert_variables)


class _Validation:
    """Periodic validation of a GAN run: the generator (its weight average where there is
    one, and then the trained weights beside it) scored on `config.eval.max_batches`
    batches of the validation split, every process on its shard; samples and TensorBoard
    from process 0."""

    def __init__(self, config, workdir, networks, mesh, schedule, writers):
        self.config, self.workdir, self.schedule, self.writers = config, workdir, schedule, writers
        self.data_sharding = sharding.data_sharding(mesh)
        replicated = sharding.replicated(mesh)
        self.generate_fn = jax.jit(
            functools.partial(train_step.generate_videos, networks),
            in_shardings=(replicated, replicated, self.data_sharding, self.data_sharding),
            out_shardings=self.data_sharding,  # each process scores its own rows
        )
        self.landmark_scorer = evaluation.LandmarkScorer()
        self.source = datasets.open_split(
            config.dataset, config.eval.split, config.data_dir or None
        )
        self.seconds = 0.0  # wall time spent here (this invocation, not resumed ones)
        self.loop_start = time.perf_counter()  # set again when the training loop starts

    def score(self, params, batch_stats) -> evaluation.EvalResult:
        config = self.config
        batches = pipeline.create_eval_iterator(
            config.dataset,
            config.eval.split,
            config.data_dir or None,
            global_batch_size=config.batch_size,
            cache_dir=self.workdir / "data_index",
            audio_lookahead=config.model.audio_lookahead_frames,
            num_threads=config.input.read_threads,
            max_batches=config.eval.max_batches,
            log_mel_stats=audio.model_log_mel_stats(config.model),
        )

        def generate(batch):
            arrays = pipeline.to_global_arrays(
                {"audio": batch["audio"], "identity": batch["identity"]}, self.data_sharding
            )
            videos = self.generate_fn(params, batch_stats, arrays["audio"], arrays["identity"])
            return pipeline.to_local_rows(videos)

        # Every process scores its shard; evaluation.evaluate combines the processes.
        return evaluation.evaluate(
            generate,
            batches,
            self.landmark_scorer,
            num_samples=config.eval.num_samples,
            sharpness=config.eval.sharpness,
        )

    def __call__(self, state, step: int) -> dict:
        """Scores `state` at `step`, writes its scalars and samples; returns the scalars."""
        started = time.perf_counter()
        result = self.score(state.generator_for_eval(), state.batch_stats)
        scalars = result.scalars()
        if state.ema:
            # Until averaging starts the average is a copy of the weights: score it once.
            averaging = step > self.schedule.ema_start_step
            trained = (
                self.score(state.params, state.batch_stats).scalars() if averaging else scalars
            )
            scalars.update(
                {
                    f"trained_{k}": trained[k]
                    for k in ("lmd", "opening_corr", "ssim", "psnr")
                    if k in trained
                }
            )
        if multihost.is_primary():
            write_samples(result, self.source, step, self.workdir / "samples")
        self.seconds += time.perf_counter() - started
        scalars["eval_seconds"] = time.perf_counter() - started
        # The share of this invocation's wall time (since its loop started) spent here.
        scalars["eval_wall_fraction"] = self.seconds / max(
            time.perf_counter() - self.loop_start, 1e-9
        )
        self.writers.scalars(step, scalars, "eval")
        return scalars


def _train_gan(
    config, workdir: pathlib.Path, flownet_params, perceptual_variables, sync_expert_variables
) -> dict:
    mesh = sharding.make_mesh()
    sharding.check_batch_size(config.batch_size, mesh)
    data_sharding, replicated = sharding.data_sharding(mesh), sharding.replicated(mesh)
    networks = train_step.build_networks(config)
    optimizers = train_step.make_optimizers(config)
    state = train_step.init_state(
        networks,
        config,
        jax.random.key(config.seed),
        flownet_params=flownet_params,
        perceptual_variables=perceptual_variables,
        sync_expert_variables=sync_expert_variables,
    )
    state = sharding.replicate(state, mesh)

    data_dir = config.data_dir or None
    train_iterator = pipeline.create_train_iterator(
        config.dataset,
        "train",
        data_dir,
        global_batch_size=config.batch_size,
        seed=config.seed,
        cache_dir=workdir / "data_index",
        audio_lookahead=config.model.audio_lookahead_frames,
        num_threads=config.input.read_threads,
        worker_count=config.input.worker_processes,
        log_mel_stats=audio.model_log_mel_stats(config.model),
    )
    checkpoints = checkpointing.Checkpointer(workdir, keep=config.keep_checkpoints)
    if checkpoints.latest_step() is not None:
        state = checkpoints.restore(checkpointing.abstract_like(state), train_iterator)
        logging.info("Resumed from step %d", int(state.step))
        print(f"Resuming from step {int(state.step)} in {workdir}", flush=True)

    schedule = train_step.Schedule.from_config(config)
    step_fn = jax.jit(
        functools.partial(
            train_step.train_step,
            networks=networks,
            optimizers=optimizers,
            loss_config=config.loss,
            schedule=schedule,
        ),
        in_shardings=(replicated, data_sharding),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    writers = _Writers(workdir)
    validation = _Validation(config, workdir, networks, mesh, schedule, writers)
    stop = multihost.StopAgreement().install()
    start_step = int(state.step)
    last_eval: dict = {}
    progress = tqdm(
        total=config.num_steps,
        initial=start_step,
        desc="train",
        unit="step",
        dynamic_ncols=True,
        disable=jax.process_index() != 0,
    )
    step = start_step
    try:
        history: list[dict] = []
        pending = None  # metrics of the step still running
        window_start = validation.loop_start = time.perf_counter()
        while step < config.num_steps:
            batch = next(train_iterator)
            arrays = pipeline.to_global_arrays(
                {k: batch[k] for k in ("audio", "identity", "video")}, data_sharding
            )
            state, metrics = step_fn(state, arrays)
            step += 1
            # Wait for the previous step only: one step stays queued behind the running one
            # (no idle device), and the progress bar counts finished steps, not dispatches.
            if pending is not None:
                history.append(jax.device_get(pending))
                progress.update(1)
            pending = metrics
            if step % config.log_every_steps == 0 or step == config.num_steps:
                history.append(jax.device_get(pending))
                progress.update(1)
                pending = None
                values = {k: float(np.mean([m[k] for m in history])) for k in history[0]}
                elapsed = time.perf_counter() - window_start
                values["steps_per_second"] = len(history) / max(elapsed, 1e-9)
                writers.scalars(step, values, "train")
                progress.set_postfix(
                    loss=f"{values['generator_loss']:.3f}", pix=f"{values['loss_pixel']:.3f}"
                )
                history, window_start = [], time.perf_counter()
            # After every step, on every process: all of them stop after the same one.
            if stop.should_stop(step):
                break
            if step % config.checkpoint_every_steps == 0:
                checkpoints.save(step, state, train_iterator)
            if step % config.eval.every_steps == 0:
                last_eval = validation(state, step)
                checkpoints.save_best(step, state, train_iterator, last_eval)
                progress.write(_format_eval(step, last_eval))
        if checkpoints.latest_step() != step:
            checkpoints.save(step, state, train_iterator, force=True)
        if not stop.requested and (not last_eval or step % config.eval.every_steps):
            last_eval = validation(state, step)
            checkpoints.save_best(step, state, train_iterator, last_eval)
            progress.write(_format_eval(step, last_eval))
    finally:
        progress.close()
        checkpoints.wait()
        checkpoints.close()
        writers.close()
        stop.uninstall()
    wall_seconds = time.perf_counter() - validation.loop_start
    timing = {
        "wall_seconds": wall_seconds,
        "eval_wall_fraction": validation.seconds / wall_seconds,
    }
    if stop.requested:
        print(f"Stopped at step {step}; saved in {workdir / checkpointing.LATEST}", flush=True)
    # Every process prints it: in a multi-host job they must all hold the same weights.
    print(
        f"Process {jax.process_index()} of {jax.process_count()}: step {step}, parameters "
        f"fingerprint {parameter_fingerprint(state.params)}",
        flush=True,
    )
    if multihost.is_primary():
        plot_curves(workdir)
        (workdir / "final_metrics.json").write_text(
            json.dumps({"step": step, **last_eval, **timing}, indent=2)
        )
    return {"step": step, **last_eval, **timing}


def parameter_fingerprint(params: Any) -> str:
    """A short hash of this process's copy of `params` (replicated arrays): equal on every
    process of a job exactly when they hold the same weights."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(params):
        digest.update(np.asarray(leaf.addressable_shards[0].data).tobytes())
    return digest.hexdigest()[:16]


def _format_eval(step: int, scalars: dict) -> str:
    def opening(prefix: str) -> str:
        value = scalars.get(f"{prefix}opening_corr")
        return "" if value is None else f", opening r {value:.2f}"

    line = (
        f"step {step}: LMD {scalars['lmd']:.3f} (static {scalars['static_lmd']:.3f}){opening('')}, "
        f"SSIM {scalars['ssim']:.3f} ({scalars['static_ssim']:.3f}), "
        f"PSNR {scalars['psnr']:.2f} ({scalars['static_psnr']:.2f})"
    )
    if "trained_lmd" in scalars:
        line += (
            f"; weight average shown, trained weights: LMD {scalars['trained_lmd']:.3f}"
            f"{opening('trained_')}, SSIM {scalars['trained_ssim']:.3f}, "
            f"PSNR {scalars['trained_psnr']:.2f}"
        )
    return line
