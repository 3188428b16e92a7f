"""generate(): lengths, windows and their seams, inputs good and bad, the CLI, default weights."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
import soundfile
from absl import flags
from PIL import Image

from data_pipeline.synthetic_lips import corpus, speech, synthetic_lips
from lipjax import configs
from lipjax.data import audio as audio_lib
from lipjax.data import datasets, pipeline, video_io
from lipjax.inference import generate as generate_module
from lipjax.inference.weights import Weights, load_weights, save_weights
from lipjax.train import train_step

REPO = pathlib.Path(__file__).resolve().parents[1]
RATE = 16_000
LONG_TEXT = (
    "bin blue at f two now. place red by g nine soon. lay green with s seven again. "
    "set white in b one please."
)


def _tone_bursts(seconds: float, rate: int = RATE) -> np.ndarray:
    """Speech-like on/off bursts of a harmonic tone (3 per second)."""
    t = np.arange(int(seconds * rate)) / rate
    carrier = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((150, 300, 450), 1))
    return (0.2 * carrier * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)


@pytest.fixture(scope="module")
def random_weights():
    """The CPU-sized generator with every kernel random (its zero-initialised last layer
    included), so that its output depends strongly on the audio."""
    config = configs.cpu_sized(configs.base_config())
    generator = train_step.build_networks(config).generator
    variables = generator.init(
        jax.random.key(0), jnp.zeros((1, 64, 128, 1)), jnp.zeros((1, 64, 64, 3)), train=False
    )
    params = jax.tree.map(lambda x: x, variables["params"])
    kernel = params["to_rgb"]["kernel"]
    params["to_rgb"]["kernel"] = 0.05 * jax.random.normal(jax.random.key(1), kernel.shape)
    return Weights(config.model.to_dict(), params, variables["batch_stats"], "random")


@pytest.fixture(scope="module")
def crop():
    return np.asarray(Image.fromarray(skimage.data.astronaut()[130:200, 180:280]).resize((64, 64)))


@pytest.mark.parametrize("seconds", [0.01, 0.64, 1.0, 2.37])
def test_frame_count_is_ceil_of_duration_times_25(random_weights, crop, seconds):
    frames = generate_module.generate(random_weights, _tone_bursts(seconds), crop, sample_rate=RATE)
    assert frames.shape == (int(np.ceil(round(seconds * RATE) / RATE * 25)), 64, 64, 3)
    assert frames.dtype == np.uint8


def test_importing_generate_loads_no_dataset_libraries():
    """Inference needs neither TFDS nor grain (0.2 s and 400 modules of import time)."""
    code = (
        "import sys; import lipjax.inference.generate, lipjax.inference.weights; "
        "print(sorted({'tensorflow_datasets', 'grain', 'data_pipeline'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_from_lipjax_import_generate_is_callable(random_weights, crop):
    from lipjax import generate

    frames = generate(random_weights, _tone_bursts(0.5), crop, sample_rate=RATE)
    assert frames.shape == (13, 64, 64, 3)
    assert generate is generate_module.generate


def test_hann_windows_at_half_overlap_sum_to_one():
    weights = generate_module.blend_weights()
    total = np.zeros(64)
    for start in range(0, 48 + 1, 8):
        total[start : start + 16] += weights
    np.testing.assert_allclose(total[8:56], 1.0, atol=1e-6)


def test_window_starts_cover_every_frame():
    for frames in (1, 15, 16, 17, 24, 25, 100, 133):
        starts = generate_module.covering_window_starts(frames, 8)
        assert starts[0] == 0 and starts[-1] + 16 >= frames
        assert len(starts) == 1 or starts[-2] + 16 < frames


@pytest.mark.parametrize("lookahead", [0, 3])
def test_jax_log_mel_windows_match_the_training_features(lookahead):
    """The windows generate() feeds the model are the log-mel windows of the input pipeline
    (NumPy front end, normalised, cut every 8 frames), each starting `lookahead` frames
    after its video window as model.audio_lookahead_frames asks (silence past the end)."""
    waveform = audio_lib.to_model_rate(_tone_bursts(1.5), RATE)
    lips = generate_module.LipGenerator.__new__(generate_module.LipGenerator)
    lips.hop, lips.audio_lookahead = 8, lookahead
    lips.log_mel_stats = audio_lib.LogMelStats(-45.0, 14.0)  # the model's, not the fixed ones
    num_frames, starts, windows = lips.windows(waveform)
    assert num_frames == 38 and list(starts) == [0, 8, 16, 24]
    padded = audio_lib.pad_to_video_frames(waveform, 40 + lookahead)
    expected = pipeline.normalize_log_mel(audio_lib.log_mel(padded), lips.log_mel_stats)
    for start, window in zip(starts, np.asarray(windows), strict=True):
        first = 4 * (start + lookahead)
        # float32 STFTs differ by up to 0.08 dB in near-silent bins
        np.testing.assert_allclose(window, expected[first : first + 64], atol=5e-3)


def test_weights_without_a_lookahead_field_are_aligned_and_bad_ones_refused(random_weights):
    model = {k: v for k, v in random_weights.model.items() if k != "audio_lookahead_frames"}
    old = Weights(model, random_weights.params, random_weights.batch_stats, "old")
    assert generate_module.LipGenerator(old).audio_lookahead == 0
    # Weights saved before per-corpus log-mel statistics: the fixed ones they trained with.
    legacy = {k: v for k, v in model.items() if not k.startswith("log_mel_")}
    legacy_weights = Weights(legacy, old.params, old.batch_stats, "legacy")
    lips = generate_module.LipGenerator(legacy_weights)
    assert lips.log_mel_stats == audio_lib.FIXED_LOG_MEL_STATS
    own = Weights({**legacy, "log_mel_mean": -47.0, "log_mel_std": 13.0}, old.params,
                  old.batch_stats, "own")  # fmt: skip
    assert generate_module.LipGenerator(own).log_mel_stats == audio_lib.LogMelStats(-47.0, 13.0)
    bad = Weights({**model, "audio_lookahead_frames": 20}, old.params, old.batch_stats, "bad")
    with pytest.raises(ValueError, match=r"audio_lookahead_frames: expected an integer 0\.\.8"):
        generate_module.LipGenerator(bad)


def _seam_ratio(frames: np.ndarray, boundaries: set[int]) -> float:
    """Mean frame-to-frame change across window boundaries / inside windows."""
    change = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    at = [c for t, c in enumerate(change, 1) if t in boundaries]
    inside = [c for t, c in enumerate(change, 1) if t not in boundaries]
    return float(np.mean(at) / np.mean(inside))


def test_window_seams_do_not_show(random_weights, crop):
    """Blended windows change no more across a window start or end than inside a window;
    without overlap (hop 16) the same model shows its seams, so the measure sees them."""
    speech_audio = _tone_bursts(6.0)
    blended = generate_module.generate(random_weights, speech_audio, crop, sample_rate=RATE)
    hard = generate_module.generate(random_weights, speech_audio, crop, sample_rate=RATE, hop=16)
    blended_ratio = _seam_ratio(blended, {t for t in range(1, len(blended)) if t % 8 == 0})
    hard_ratio = _seam_ratio(hard, {t for t in range(1, len(hard)) if t % 16 == 0})
    print(f"seam ratio: blended {blended_ratio:.3f}, no overlap {hard_ratio:.3f}")
    assert blended_ratio <= 1.05
    assert hard_ratio > blended_ratio


def test_bucket_sizes_and_chunk_plan():
    assert generate_module.bucket_sizes(16) == (1, 2, 4, 8, 16)
    assert generate_module.bucket_sizes(12) == (1, 2, 4, 8, 12)
    assert generate_module.bucket_sizes(1) == (1,)
    assert generate_module.chunk_plan(1, 16) == [(0, 1, 1)]  # one clip computes one clip
    assert generate_module.chunk_plan(5, 16) == [(0, 5, 8)]
    assert generate_module.chunk_plan(31, 16) == [(0, 16, 16), (16, 15, 16)]
    assert generate_module.chunk_plan(35, 16) == [(0, 16, 16), (16, 16, 16), (32, 3, 4)]


def _reference_frames(weights, waveform, crop, hop=8):
    """A straightforward generate(): every window alone through the generator (batch 1,
    weights as constants), then the Hann blend written out frame by frame."""
    module = weights.generator()
    apply = jax.jit(lambda a, i: module.apply(weights.variables, a, i, train=False)[0])
    lips = generate_module.LipGenerator.__new__(generate_module.LipGenerator)
    lips.hop = hop
    lips.audio_lookahead = weights.model.get("audio_lookahead_frames", 0)
    lips.log_mel_stats = audio_lib.model_log_mel_stats(weights.model)
    num_frames, starts, windows = lips.windows(waveform)
    identity = (crop.astype(np.float32) / 127.5 - 1.0)[None]
    clips = np.stack([np.asarray(apply(w[None], identity), np.float32)[0] for w in windows])
    blend = generate_module.blend_weights()
    frames = []
    for t in range(num_frames):
        covering = [(k, t - s) for k, s in enumerate(starts) if s <= t < s + 16]
        total = sum(blend[i] * clips[k, i] for k, i in covering)
        frames.append(total / sum(blend[i] for _, i in covering))
    video = np.clip(np.rint((np.stack(frames) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return clips, video


@pytest.mark.parametrize("seconds", [0.3, 1.2, 2.5])  # 1, 3 and 7 windows
def test_batched_buckets_match_one_window_at_a_time(random_weights, crop, seconds):
    """Batches of 4 windows padded to buckets 1, 2, 4 give the clips and frames of a
    window-at-a-time reference (float tolerance; a frame may round 1 level apart)."""
    waveform = audio_lib.to_model_rate(_tone_bursts(seconds), RATE)
    lips = generate_module.LipGenerator(random_weights, batch_windows=4)
    _, starts, windows = lips.windows(waveform)
    assert len(starts) == {0.3: 1, 1.2: 3, 2.5: 7}[seconds]
    expected_clips, expected_frames = _reference_frames(random_weights, waveform, crop)
    np.testing.assert_allclose(lips.clips(windows, crop), expected_clips, atol=1e-4)
    frames = lips(waveform, crop, sample_rate=audio_lib.SAMPLE_RATE)
    assert frames.shape == expected_frames.shape
    assert np.abs(frames.astype(int) - expected_frames).max() <= 1


def test_weights_are_arguments_not_compiled_constants(random_weights, crop):
    """Generators of one architecture share compiled programs whatever their weights, and a
    call compiles only the bucket sizes it uses."""
    run = generate_module._run_generator
    scaled = Weights(
        random_weights.model,
        jax.tree.map(lambda x: 0.5 * x, random_weights.params),
        random_weights.batch_stats,
        "scaled",
    )
    waveform = _tone_bursts(0.3)  # one window
    first = generate_module.LipGenerator(random_weights)(waveform, crop, sample_rate=RATE)
    compiled = run._cache_size()
    second = generate_module.LipGenerator(scaled)(waveform, crop, sample_rate=RATE)
    assert run._cache_size() == compiled  # new weights, no new program
    assert not np.array_equal(first, second)  # ... and they are used
    lowered = run.lower(
        scaled.generator(),
        scaled.variables,
        jnp.zeros((1, 64, 128, 1)),
        jnp.zeros((1, 64, 64, 3)),
    )
    parameter_bytes = sum(x.nbytes for x in jax.tree.leaves(scaled.params))
    assert len(lowered.as_text()) < parameter_bytes  # no weights inlined in the program


# ------------------------------------------------------------------------- bad input


def test_audio_inputs_are_normalised(random_weights, crop, tmp_path):
    mono = _tone_bursts(1.0)
    stereo = np.stack([mono, mono], axis=1)
    np.testing.assert_allclose(
        generate_module.load_audio(stereo, RATE), generate_module.load_audio(mono, RATE)
    )
    np.testing.assert_allclose(
        generate_module.load_audio(stereo.T, RATE), generate_module.load_audio(mono, RATE)
    )
    pcm = np.rint(mono * 32767).astype(np.int16)
    np.testing.assert_allclose(
        generate_module.load_audio(pcm, RATE), generate_module.load_audio(mono, RATE), atol=1e-4
    )
    assert len(generate_module.load_audio(mono, RATE)) == 44_100  # resampled to 44.1 kHz
    path = tmp_path / "speech.wav"
    soundfile.write(path, stereo, 22_050)
    assert len(generate_module.load_audio(path)) == 32_000  # 16,000 samples at 22.05 kHz
    silent = generate_module.generate(random_weights, np.zeros(8000), crop, sample_rate=RATE)
    assert silent.shape == (13, 64, 64, 3)


@pytest.mark.parametrize(
    ("audio", "sample_rate", "message"),
    [
        (np.zeros(0), RATE, "empty"),
        (np.array([0.0, np.nan, 0.1]), RATE, "NaN"),
        (np.ones(100), None, "sample rate"),
        (np.ones((100, 100)), RATE, "channels"),
        (np.ones(100), 50, "not a speech rate"),
        (np.array(["a", "b"]), RATE, "numbers"),
    ],
)
def test_bad_audio_is_refused_with_a_clear_message(audio, sample_rate, message):
    with pytest.raises(ValueError, match=message):
        generate_module.load_audio(audio, sample_rate)


def test_bad_audio_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.wav"):
        generate_module.load_audio(tmp_path / "missing.wav")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF0000WAVEnot really audio")
    with pytest.raises(ValueError, match="could not decode"):
        generate_module.load_audio(corrupt)


def test_image_inputs_are_normalised(crop):
    grey = crop.mean(axis=-1).astype(np.uint8)
    assert generate_module.load_image(grey).shape == (64, 64, 3)
    rgba = np.concatenate([crop, np.full((64, 64, 1), 255, np.uint8)], axis=-1)
    np.testing.assert_array_equal(generate_module.load_image(rgba), crop)
    np.testing.assert_array_equal(generate_module.load_image(crop / 255.0), crop)
    lips, placement = generate_module.lip_crop(crop)
    assert placement is None and lips.shape == (64, 64, 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        generate_module.load_image(crop * 2.0)
    with pytest.raises(ValueError, match="shape"):
        generate_module.load_image(np.zeros((4, 64, 64, 3), np.uint8))


def test_face_photos_are_cropped_at_the_mouth_even_when_huge():
    photo = skimage.data.astronaut()  # 512 x 512
    lips, placement = generate_module.lip_crop(photo)
    assert lips.shape == (64, 64, 3)
    # The mouth of the astronaut photo lies near (222, 147) (x, y).
    assert np.allclose(placement.centre, (222, 147), atol=6)
    huge = np.asarray(Image.fromarray(photo).resize((2048, 2048)))
    _, huge_placement = generate_module.lip_crop(huge)
    np.testing.assert_allclose(huge_placement.centre, placement.centre * 4, atol=12)
    np.testing.assert_allclose(huge_placement.half_size, placement.half_size * 4, rtol=0.1)


def test_an_image_without_a_face_is_refused():
    noise = np.random.default_rng(0).integers(0, 255, (200, 240, 3), np.uint8)
    with pytest.raises(ValueError, match="no face found"):
        generate_module.lip_crop(noise)


def test_missing_and_foreign_checkpoints_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_weights(tmp_path / "nowhere")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "weights.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match="neither a lipjax weights folder"):
        load_weights(tmp_path / "foreign")


def test_weights_round_trip(random_weights, crop, tmp_path):
    saved = load_weights(save_weights(random_weights, tmp_path / "weights"))
    speech_audio = _tone_bursts(0.8)
    np.testing.assert_array_equal(
        generate_module.generate(saved, speech_audio, crop, sample_rate=RATE),
        generate_module.generate(random_weights, speech_audio, crop, sample_rate=RATE),
    )


def test_default_weights_ship_with_lipjax(crop):
    weights = load_weights(None)
    assert weights.model["identity_skip"] and weights.model["width"] <= 0.25
    count = sum(x.size for x in jax.tree.leaves(weights.params))
    assert count < 2_000_000  # a few MB
    frames = generate_module.generate(None, _tone_bursts(1.0), crop, sample_rate=RATE)
    assert frames.shape == (25, 64, 64, 3)


# ------------------------------------------------------------------ end to end, CLI


def _held_out_speaker_inputs(config) -> tuple[np.ndarray, np.ndarray]:
    """A >5 s eSpeak utterance in the voice of an unseen (test) speaker, and that speaker's
    first test frame as the identity."""
    corpus_config = synthetic_lips.CONFIGS["tiny"]
    test_speaker = corpus.make_speakers(corpus_config)[corpus_config.num_train_speakers]
    spoken = speech.synthesize(LONG_TEXT, test_speaker.voice)
    source = datasets.open_split(config.dataset, "test", config.data_dir)
    names = [source[i]["speaker"] for i in range(len(source))]
    names = [n.decode() if isinstance(n, bytes) else n for n in names]
    example = source[names.index(test_speaker.speaker_id)]
    identity = np.asarray(example["frames"][0])
    return audio_lib.to_model_rate(spoken.waveform, spoken.sample_rate), identity


def test_end_to_end_train_then_generate_an_mp4(smoke_run, tmp_path):
    """From the session's trained :smoke run (tests/conftest.py) to an mp4."""
    waveform, identity = _held_out_speaker_inputs(smoke_run.config)
    duration = len(waveform) / audio_lib.SAMPLE_RATE
    assert duration >= 5.0
    weights = load_weights(smoke_run.workdir)
    generator = generate_module.LipGenerator(weights)
    frames, wave, placement = generator.generate_with_placement(
        waveform, identity, sample_rate=44_100
    )
    assert frames.shape == (int(np.ceil(duration * 25)), 64, 64, 3)
    path = generate_module.write_video(tmp_path / "lips.mp4", frames, wave, identity, placement)
    video, fps, decoded_audio, audio_rate = video_io.read_mp4(path)
    assert fps == 25 and len(video) == len(frames)
    assert audio_rate == 44_100 and abs(len(decoded_audio) / audio_rate - duration) < 0.1


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = ""
    return subprocess.run(
        [sys.executable, "-m", "lipjax.cli.generate", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=900,
    )


def test_cli_full_face_lips_only_batch_and_errors(smoke_run, tmp_path):
    # A real photo and eSpeak speech.
    spoken = speech.synthesize("bin blue at f two now", speech.Voice("en-us+f2"))
    speech_path = tmp_path / "speech.wav"
    soundfile.write(speech_path, spoken.waveform, spoken.sample_rate)
    num_frames = int(np.ceil(len(spoken.waveform) / spoken.sample_rate * 25))
    face_path = tmp_path / "face.png"
    Image.fromarray(skimage.data.astronaut()).save(face_path)
    (tmp_path / "pairs").mkdir()
    soundfile.write(tmp_path / "pairs" / "a.wav", _tone_bursts(0.6), RATE)
    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "pairs" / "a.jpg")
    (tmp_path / "pairs.csv").write_text("audio,image\nspeech.wav,face.png\npairs/a.wav,face.png\n")
    checkpoint = f"--checkpoint={smoke_run.workdir}"

    full = _run_cli(
        checkpoint,
        f"--audio={speech_path}",
        f"--image={face_path}",
        f"--output={tmp_path / 'face.mp4'}",
    )
    assert full.returncode == 0, full.stderr
    video, fps, sound, _ = video_io.read_mp4(tmp_path / "face.mp4")
    assert video.shape == (num_frames, 512, 512, 3) and fps == 25 and sound is not None

    batch = _run_cli(
        checkpoint,
        f"--batch={tmp_path / 'pairs.csv'}",
        "--lips_only",
        f"--output={tmp_path / 'out'}",
    )
    assert batch.returncode == 0, batch.stderr
    video, _, _, _ = video_io.read_mp4(tmp_path / "out" / "a.mp4")
    assert video.shape == (15, 256, 256, 3)  # 64x64 crops shown 4x
    assert (tmp_path / "out" / "speech.mp4").is_file()

    missing = _run_cli(
        f"--checkpoint={tmp_path / 'nowhere'}", f"--audio={speech_path}", f"--image={face_path}"
    )
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    no_face = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)).save(
        no_face
    )
    faceless = _run_cli(checkpoint, f"--audio={speech_path}", f"--image={no_face}")
    assert faceless.returncode == 1 and "no face found" in faceless.stderr
    assert "Traceback" not in faceless.stderr


def test_flags_are_defined_once():
    # The library defines no flags (the CLI is lipjax.cli.generate), so importing
    # lipjax.inference.generate next to another absl program does not clash.
    assert "audio" not in flags.FLAGS
