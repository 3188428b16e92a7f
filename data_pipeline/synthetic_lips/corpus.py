"""The synthetic audiovisual corpus: who says what, and how one utterance is made.

An utterance is a GRID-grammar sentence spoken by eSpeak NG with one speaker's voice; its
phoneme events drive a coarticulated lip articulation track that LEADS the audio by a
per-utterance delay; a renderer draws that speaker's lower face frame by frame with head
motion, lighting, blur and noise, and exact mouth landmarks; the crop rule (docs/design.md,
"Lip crops") cuts the 64 x 64 lip crops. Everything is a pure function of (corpus seed,
speaker, utterance), so builds are reproducible and parallel workers agree.

Splits follow Table 1 of the paper: `train` and `validation` share speakers but not
sentences; `test` has unseen speakers saying unseen sentences.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data_pipeline.synthetic_lips import grid_grammar, render, speech, visemes
from lipjax.data import audio, crop

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """Size and generation settings of one corpus variant."""

    num_train_speakers: int  # speakers of the train and validation splits
    num_test_speakers: int  # unseen speakers of the test split
    train_utterances_per_speaker: int
    validation_utterances_per_speaker: int
    test_utterances_per_speaker: int
    seed: int = 0
    min_delay_frames: int = 0  # lips lead the audio by a delay drawn from this range
    max_delay_frames: int = 4
    face_size: int = 128  # rendered lower-face frames, larger than the crop
    crop_smoothing: int = 5  # frames in the moving average of the crop box
    audio_noise: tuple[float, float] = (3e-4, 2e-3)  # room-noise std range per speaker
    leading_silence: tuple[float, float] = (0.2, 0.5)  # seconds before the speech
    trailing_silence: tuple[float, float] = (0.1, 0.3)  # seconds after eSpeak's final pause

    def validate(self) -> None:
        """Raises ValueError naming the first setting that cannot make a corpus."""
        counts = {
            "num_train_speakers": self.num_train_speakers,
            "num_test_speakers": self.num_test_speakers,
            "train_utterances_per_speaker": self.train_utterances_per_speaker,
            "validation_utterances_per_speaker": self.validation_utterances_per_speaker,
            "test_utterances_per_speaker": self.test_utterances_per_speaker,
        }
        for name, value in counts.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not 0 <= self.min_delay_frames <= self.max_delay_frames:
            raise ValueError(
                "min_delay_frames, max_delay_frames: expected 0 <= min <= max, got "
                f"{self.min_delay_frames}, {self.max_delay_frames}"
            )
        if self.max_delay_frames > 12:
            raise ValueError(
                "max_delay_frames: expected at most 12 frames (0.48 s), got "
                f"{self.max_delay_frames}"
            )
        if self.face_size < 96:
            raise ValueError(f"face_size: expected >= 96 pixels, got {self.face_size}")
        if self.crop_smoothing < 1:
            raise ValueError(f"crop_smoothing: expected >= 1 frame, got {self.crop_smoothing}")
        needed = self.sentences_needed()
        if sum(needed.values()) > grid_grammar.NUM_SENTENCES:
            raise ValueError(
                f"utterances per speaker: {sum(needed.values())} distinct sentences needed, "
                f"the GRID grammar has {grid_grammar.NUM_SENTENCES}"
            )

    def sentences_needed(self) -> dict[str, int]:
        """Distinct sentences per split: each speaker of a split says different ones."""
        return {
            "train": self.num_train_speakers * self.train_utterances_per_speaker,
            "validation": self.num_train_speakers * self.validation_utterances_per_speaker,
            "test": self.num_test_speakers * self.test_utterances_per_speaker,
        }


@dataclasses.dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: a voice, a face and a way of articulating."""

    speaker_id: str  # "s1", "s2", ... as GRID names speakers
    index: int
    voice: speech.Voice
    appearance: render.Appearance
    style: visemes.ArticulationStyle
    audio_noise: float  # std of the room noise
    loudness: float  # RMS of the speech


@dataclasses.dataclass(frozen=True)
class UtterancePlan:
    """Everything needed to make one utterance deterministically."""

    split: str
    speaker: Speaker
    sentence: grid_grammar.Sentence
    delay_frames: int
    seed: tuple[int, ...]

    @property
    def key(self) -> str:
        """Unique key: GRID utterance ids repeat across speakers."""
        return f"{self.speaker.speaker_id}_{self.sentence.utterance_id}"


@dataclasses.dataclass
class RenderedUtterance:
    """One utterance before cropping: full frames and the audio at 44.1 kHz."""

    plan: UtterancePlan
    faces: np.ndarray  # (N, face_size, face_size, 3) uint8
    face_landmarks: np.ndarray  # (N, 20, 2) float32, mouth points 48..67 in face pixels
    waveform: np.ndarray  # (N * 1764,) float32 at 44.1 kHz
    phonemes: list[tuple[str, float, float]]
    words: list[tuple[str, float, float]]
    articulation: np.ndarray  # (N, 7) float32, what the renderer was asked to draw

    @property
    def num_frames(self) -> int:
        return len(self.faces)


def _rng(*seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(seed)))


def make_speakers(config: CorpusConfig) -> list[Speaker]:
    """All speakers, train speakers first (s1..sK), then the unseen test speakers."""
    speakers = []
    for index in range(config.num_train_speakers + config.num_test_speakers):
        rng = _rng(config.seed, 1, index)
        speakers.append(
            Speaker(
                speaker_id=f"s{index + 1}",
                index=index,
                voice=speech.sample_voice(rng),
                appearance=render.sample_appearance(rng),
                style=visemes.sample_style(rng),
                audio_noise=float(rng.uniform(*config.audio_noise)),
                loudness=float(rng.uniform(0.05, 0.12)),
            )
        )
    return speakers


def plan_corpus(config: CorpusConfig) -> dict[str, list[UtterancePlan]]:
    """The utterances of each split, in a fixed order."""
    config.validate()
    speakers = make_speakers(config)
    train_speakers = speakers[: config.num_train_speakers]
    test_speakers = speakers[config.num_train_speakers :]
    sentences = grid_grammar.partition_sentences(config.sentences_needed(), _rng(config.seed, 2))
    per_speaker = {
        "train": config.train_utterances_per_speaker,
        "validation": config.validation_utterances_per_speaker,
        "test": config.test_utterances_per_speaker,
    }
    plans: dict[str, list[UtterancePlan]] = {}
    for split in SPLITS:
        split_speakers = test_speakers if split == "test" else train_speakers
        plans[split] = []
        for speaker_number, speaker in enumerate(split_speakers):
            count = per_speaker[split]
            chunk = sentences[split][speaker_number * count : (speaker_number + 1) * count]
            for number, sentence in enumerate(chunk):
                seed = (config.seed, 3, SPLITS.index(split), speaker.index, number)
                delay = int(
                    _rng(*seed, 0).integers(config.min_delay_frames, config.max_delay_frames + 1)
                )
                plans[split].append(UtterancePlan(split, speaker, sentence, delay, seed))
    return plans


def render_utterance(plan: UtterancePlan, config: CorpusConfig) -> RenderedUtterance:
    """Speaks, articulates and renders one planned utterance."""
    speaker = plan.speaker
    spoken = speech.synthesize(plan.sentence.spoken_text, speaker.voice)
    rng = _rng(*plan.seed, 1)
    # Silence around the speech, as in GRID: lips start and end at rest, and a lead of
    # up to max_delay frames never pushes a lip movement out of the video.
    lead = float(rng.uniform(*config.leading_silence))
    trail = float(rng.uniform(*config.trailing_silence))
    speech_audio = audio.to_model_rate(spoken.waveform, spoken.sample_rate)
    # eSpeak's voices differ in loudness (Klatt ones are ~6 dB quieter): level each
    # utterance to the speaker's own loudness.
    voiced = np.abs(speech_audio) > 1e-3
    rms = np.sqrt(np.mean(speech_audio[voiced] ** 2)) if voiced.any() else 1.0
    speech_audio = speech_audio * (speaker.loudness / max(rms, 1e-6))
    lead_samples = round(lead * audio.SAMPLE_RATE)
    num_frames = audio.num_video_frames(
        lead_samples + len(speech_audio) + round(trail * audio.SAMPLE_RATE)
    )
    waveform = np.zeros(num_frames * audio.SAMPLES_PER_VIDEO_FRAME, np.float64)
    waveform[lead_samples : lead_samples + len(speech_audio)] = speech_audio
    waveform += speaker.audio_noise * rng.standard_normal(len(waveform))
    waveform = np.clip(waveform, -1.0, 1.0).astype(np.float32)
    lead = lead_samples / audio.SAMPLE_RATE
    duration = len(waveform) / audio.SAMPLE_RATE

    phonemes = [("_", 0.0, lead)] + [
        (p.phoneme, p.start + lead, p.end + lead) for p in spoken.phonemes
    ]
    if phonemes[-1][2] < duration:
        phonemes.append(("_", phonemes[-1][2], duration))
    words = [(w.word, w.start + lead, w.end + lead) for w in spoken.words]
    articulation = visemes.articulation_track(
        phonemes, num_frames, plan.delay_frames, speaker.style
    )
    poses, lightings = render.sample_motion(rng, num_frames)
    faces, landmarks = render.render_video(
        speaker.appearance, articulation, poses, lightings, rng, size=config.face_size
    )
    return RenderedUtterance(plan, faces, landmarks, waveform, phonemes, words, articulation)


def to_example(rendered: RenderedUtterance, config: CorpusConfig) -> dict:
    """The TFDS example of a rendered utterance: lip crops, log-mel and metadata."""
    frames, landmarks = crop.crop_video(
        rendered.faces, rendered.face_landmarks, smoothing_window=config.crop_smoothing
    )
    plan = rendered.plan
    return {
        "frames": frames,
        "log_mel": audio.log_mel(rendered.waveform),
        "landmarks": landmarks,
        "waveform": rendered.waveform,
        "speaker": plan.speaker.speaker_id,
        "utterance": plan.sentence.utterance_id,
        "text": plan.sentence.text,
        "phonemes": _events(rendered.phonemes, "phoneme"),
        "words": _events(rendered.words, "word"),
        "av_delay_frames": plan.delay_frames,
    }


def _events(events: list[tuple[str, float, float]], label: str) -> dict:
    return {
        label: [e[0] for e in events],
        "start": np.array([e[1] for e in events], np.float32),
        "end": np.array([e[2] for e in events], np.float32),
    }


def make_example(plan: UtterancePlan, config: CorpusConfig) -> tuple[str, dict]:
    """(key, example) for one plan; the unit of work of parallel builds."""
    return plan.key, to_example(render_utterance(plan, config), config)
