"""English speech from eSpeak NG with sample-accurate phoneme and word timings.

libespeak-ng (shipped by the `espeakng-loader` wheel) is driven through ctypes. Its
synth callback hands back 16-bit audio together with events; with phoneme events
enabled every phoneme reports the absolute sample index at which it starts, so the
timings need no forced alignment.

Three properties of the library shape this module:

* Determinism. The synthesiser keeps state between utterances (pitch-flutter phase,
  gain control, Klatt filter memories), so the same text spoken twice in one process
  differs by a few samples. Every call therefore loads a private, fresh copy of the
  library and unloads it afterwards (about 5 ms), and seeds its noise generator: the
  result depends only on (text, voice), in any process, in any order.
* Processes and threads. With a fresh library per call there is no state for fork or
  spawn to break; a lock serialises calls within a process because the library keeps
  its state in globals. AUDIO_OUTPUT_SYNCHRONOUS runs synthesis and the callback on the
  calling thread (AUDIO_OUTPUT_RETRIEVAL would start a worker thread and poll it,
  roughly ten times slower).
* Where a phoneme starts. eSpeak generates some of a phoneme's audio before sending its
  event: the silent pre-pause (a stop's closure, a gap at a word boundary) and, for a
  vowel after a nasal or liquid, the vowel onset. Raw events give that audio to the
  previous phoneme. We move a word's first phoneme back to its word event (sent before
  all of it) and a phoneme inside a word back over a silent pre-pause, so a "p" or "b"
  starts with its lip closure, which is what a viseme needs. (A vowel onset inside a
  word, as in "blue", stays with the "l".) Silence means zero samples or, for variants
  that add an echo, samples that are exactly the echo of earlier output.
"""

from __future__ import annotations

import _ctypes
import atexit
import ctypes
import dataclasses
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# English voices (languages) of eSpeak NG 1.52; each may take a variant: "en-us+m3".
ENGLISH_VOICES = (
    "en-us",
    "en",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
    "en-029",
)
# Voice variants (files in espeak-ng-data/voices/!v) that sample_voice draws from: human
# sounding and together spanning a wide range of pitch and timbre. Median F0 at pitch 50
# (measured on "bin blue at eff two now"): male 95..130 Hz, female 185..245 Hz.
MALE_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "klatt", "klatt2", "klatt3",
    "Alex", "Denis", "Gene", "Michael", "Mike", "iven", "max", "quincy", "rob",
)  # fmt: skip
FEMALE_VARIANTS = (
    "f1", "f2", "f3", "f4", "f5", "Annie", "belinda", "linda", "steph", "shelby",
)  # fmt: skip

PITCH_LIMITS = (0, 100)  # espeakPITCH
PITCH_RANGE_LIMITS = (0, 100)  # espeakRANGE
RATE_LIMITS = (80, 450)  # espeakRATE, words per minute
# What sample_voice draws. Pitch p scales the variant's F0 by about 2 ** ((p - 50) / 50),
# so these keep F0 in adult ranges (measured: 80..140 Hz male, 145..260 Hz female).
SAMPLED_MALE_PITCH = (35, 70)
SAMPLED_FEMALE_PITCH = (25, 60)
SAMPLED_PITCH_RANGE = (30, 80)
SAMPLED_RATE = (140, 200)  # clear speech that lips can follow

PAUSE_PREFIX = "_"  # eSpeak's pauses: "_", "_:", "_!" ...
# A run of exact zeros at least this long (1 ms at 22.05 kHz) before a phoneme is a
# pre-pause; shorter runs are zero crossings.
_MIN_PREPAUSE_SAMPLES = 22

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000  # end with a sentence pause, as the espeak-ng command line does
_EE_OK = 0
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_NORMAL_VOLUME = 100
_RANDOM_SEED = 0
_ECHO_BUFFER = 5500  # N_ECHO_BUF, samples


@dataclasses.dataclass(frozen=True)
class Voice:
    """One synthetic speaker's voice."""

    name: str  # eSpeak voice, optionally with a variant: "en-us", "en-gb-x-rp+f2"
    pitch: int = 50  # espeakPITCH, 0..100; 50 is the variant's own pitch
    pitch_range: int = 50  # espeakRANGE, 0..100; 0 is monotone
    rate: int = 175  # espeakRATE, words per minute, 80..450

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or "\0" in self.name:
            raise ValueError(
                f"Voice.name must be a non-empty eSpeak voice name such as 'en-us' or "
                f"'en-us+m3', got {self.name!r}"
            )
        for field, (low, high) in (
            ("pitch", PITCH_LIMITS),
            ("pitch_range", PITCH_RANGE_LIMITS),
            ("rate", RATE_LIMITS),
        ):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"Voice.{field} must be an int in [{low}, {high}], got {value!r}")
            if not low <= value <= high:
                raise ValueError(f"Voice.{field} must be in [{low}, {high}], got {value}")
            object.__setattr__(self, field, int(value))

    @property
    def language(self) -> str:
        """The voice without its variant: "en-us" for "en-us+m3"."""
        return self.name.split("+", 1)[0]

    @property
    def variant(self) -> str | None:
        """The variant, "m3" for "en-us+m3", or None."""
        return self.name.split("+", 1)[1] if "+" in self.name else None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Voice:
        return cls(**values)


def sample_voice(rng: np.random.Generator) -> Voice:
    """Draws a distinct-sounding voice: accent, male or female variant, pitch, range, rate.

    Rates stay within 140..200 words per minute so speech is clear and lips can follow.
    """
    language = ENGLISH_VOICES[rng.integers(len(ENGLISH_VOICES))]
    if rng.random() < 0.5:
        variants, pitch = MALE_VARIANTS, SAMPLED_MALE_PITCH
    else:
        variants, pitch = FEMALE_VARIANTS, SAMPLED_FEMALE_PITCH
    variant = variants[rng.integers(len(variants))]
    return Voice(
        name=f"{language}+{variant}",
        pitch=int(rng.integers(pitch[0], pitch[1] + 1)),
        pitch_range=int(rng.integers(SAMPLED_PITCH_RANGE[0], SAMPLED_PITCH_RANGE[1] + 1)),
        rate=int(rng.integers(SAMPLED_RATE[0], SAMPLED_RATE[1] + 1)),
    )


@dataclasses.dataclass(frozen=True)
class PhonemeEvent:
    """One phoneme: eSpeak's mnemonic without stress marks, and its span in seconds."""

    phoneme: str  # "b", "I", "aI", "_:" ...
    start: float
    end: float
    stress: int = 0  # 2 primary ("'" in eSpeak), 1 secondary (","), 0 none

    @property
    def is_pause(self) -> bool:
        return self.phoneme.startswith(PAUSE_PREFIX)


@dataclasses.dataclass(frozen=True)
class WordEvent:
    """One spoken word and its span in seconds."""

    word: str
    start: float
    end: float


@dataclasses.dataclass
class Utterance:
    """Synthesised speech and what was said when."""

    waveform: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int  # eSpeak's native rate, 22050
    phonemes: list[PhonemeEvent]  # contiguous, cover [0, duration]
    words: list[WordEvent]

    @property
    def duration(self) -> float:
        return len(self.waveform) / self.sample_rate


def synthesize(text: str, voice: Voice) -> Utterance:
    """Speak `text` with `voice`."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    if "\0" in text:
        raise ValueError("text must not contain NUL characters")
    if not isinstance(voice, Voice):
        raise ValueError(f"voice must be a speech.Voice, got {type(voice).__name__}")
    _check_variant_exists(voice)

    samples, events, sample_rate = _run_espeak(text, voice)
    if not samples.size or not any(e.type == _EVENT_PHONEME for e in events):
        raise ValueError(f"text produced no speech: {text!r}")
    silent = _silent_samples(samples, _variant_echo(voice), sample_rate)
    phonemes, phoneme_positions = _phoneme_events(events, samples, silent, sample_rate)
    words = _word_events(text, events, phonemes, phoneme_positions, sample_rate)
    waveform = (samples.astype(np.float32) / 32768.0).astype(np.float32)
    return Utterance(waveform, sample_rate, phonemes, words)


def available_variants() -> list[str]:
    """Names of the voice variants installed with the espeakng-loader data."""
    return sorted(path.name for path in _variant_dir().iterdir() if path.is_file())


# --------------------------------------------------------------------------- events


@dataclasses.dataclass(frozen=True)
class _RawEvent:
    type: int
    text_position: int  # 1-based character index into the text
    length: int  # characters, for word events
    sample: int  # absolute sample index in the returned audio
    phoneme: str  # the mnemonic, for phoneme events


def _split_stress(mnemonic: str) -> tuple[str, int]:
    if mnemonic.startswith("'"):
        return mnemonic[1:], 2
    if mnemonic.startswith(","):
        return mnemonic[1:], 1
    return mnemonic, 0


def _phoneme_events(
    events: list[_RawEvent], samples: np.ndarray, silent: np.ndarray, sample_rate: int
) -> tuple[list[PhonemeEvent], list[int]]:
    """Contiguous phoneme spans covering the audio, and each one's text position.

    A phoneme starts at its event, moved earlier over audio that belongs to it but that
    eSpeak generated before the event: back to its word's event for the first phoneme
    of a word (which eSpeak sends before the pre-pause), and over a silent pre-pause
    (a stop closure) inside a word.
    """
    num_samples = len(samples)
    silent_before = _silent_run_starts(silent)
    phonemes_raw: list[_RawEvent] = []
    starts: list[int] = []
    word_start: int | None = None
    for event in events:  # in the order eSpeak generated them
        if event.type == _EVENT_WORD:
            word_start = min(max(event.sample, 0), num_samples)
            continue
        if event.type != _EVENT_PHONEME or not event.phoneme:
            continue
        start = min(max(event.sample, starts[-1] if starts else 0), num_samples)
        previous = phonemes_raw[-1] if phonemes_raw else None
        previous_start = starts[-1] if starts else 0
        movable = not event.phoneme.startswith(PAUSE_PREFIX) and not (
            previous is not None and previous.phoneme.startswith(PAUSE_PREFIX)
        )
        if movable:
            candidates = [start]
            if word_start is not None:
                candidates.append(word_start)
            run_start = int(silent_before[start])
            if start - run_start >= _MIN_PREPAUSE_SAMPLES:
                candidates.append(run_start)
            earliest = min(candidates)
            if previous is None or earliest > previous_start:
                start = earliest
        word_start = None
        phonemes_raw.append(event)
        starts.append(start)

    names = [_split_stress(e.phoneme) for e in phonemes_raw]
    if starts and starts[0] > 0:  # audio before the first phoneme: cover it with a pause
        starts.insert(0, 0)
        names.insert(0, (PAUSE_PREFIX, 0))
        phonemes_raw.insert(0, _RawEvent(_EVENT_PHONEME, 0, 0, 0, PAUSE_PREFIX))
    ends = [*starts[1:], num_samples]

    phonemes, positions = [], []
    for (name, stress), start, end, event in zip(names, starts, ends, phonemes_raw, strict=True):
        if end <= start:
            continue  # eSpeak reports e.g. the final "_" with zero length
        phonemes.append(PhonemeEvent(name, start / sample_rate, end / sample_rate, stress))
        positions.append(event.text_position)
    return phonemes, positions


def _silent_run_starts(silent: np.ndarray) -> np.ndarray:
    """For each position n in 0..len, where the run of silent samples ending at n-1 begins."""
    positions = np.arange(len(silent) + 1)
    sound = np.flatnonzero(~silent)
    before = np.searchsorted(sound, positions) - 1  # last sounding sample before n
    return np.where(before >= 0, sound[np.maximum(before, 0)] + 1, 0)


def _silent_samples(samples: np.ndarray, echo: tuple[int, int], sample_rate: int) -> np.ndarray:
    """Samples where the synthesiser itself produced silence.

    Some variants add an echo (delay in ms, amplitude in 1/256), which eSpeak also plays
    through silences: there the output is exactly the scaled output one delay earlier
    (3/4 of it after a sampled consonant, which eSpeak stores at 3/4 in its echo buffer).
    """
    values = samples.astype(np.int64)
    delay_ms, amplitude = echo
    if delay_ms <= 0 or amplitude <= 0:
        return values == 0
    delay = min(delay_ms * sample_rate // 1000, _ECHO_BUFFER - 1)
    amplitude = min(amplitude, 100)
    earlier = np.concatenate([np.zeros(delay, np.int64), values[:-delay]])
    stored_consonant = np.sign(earlier) * (np.abs(earlier) * 3 // 4)
    silent = np.zeros(len(values), bool)
    for stored in (earlier, stored_consonant):
        silent |= np.abs(values - ((stored * amplitude) >> 8)) <= 1
    return silent


def _variant_echo(voice: Voice) -> tuple[int, int]:
    """(delay ms, amplitude) of the echo the voice's variant file sets; (0, 0) if none."""
    if voice.variant is None:
        return 0, 0
    echo = (0, 0)
    for line in (_variant_dir() / voice.variant).read_text(errors="replace").splitlines():
        fields = line.split("//", 1)[0].split()
        if len(fields) >= 3 and fields[0] == "echo":
            try:
                echo = (int(fields[1]), int(fields[2]))
            except ValueError:
                continue
    return echo


def _word_events(
    text: str,
    events: list[_RawEvent],
    phonemes: list[PhonemeEvent],
    phoneme_positions: list[int],
    sample_rate: int,
) -> list[WordEvent]:
    """Word spans: from the first to the last non-pause phoneme eSpeak gave the word."""
    word_events = [e for e in events if e.type == _EVENT_WORD]
    words = []
    for k, event in enumerate(word_events):
        begin = event.text_position - 1
        next_begin = word_events[k + 1].text_position - 1 if k + 1 < len(word_events) else None
        word = _word_text(text, begin, event.length, next_begin)
        spans = [
            (p.start, p.end)
            for p, position in zip(phonemes, phoneme_positions, strict=True)
            if position == event.text_position and not p.is_pause
        ]
        if spans:
            start, end = min(s for s, _ in spans), max(e for _, e in spans)
        else:  # a word without phonemes of its own: fall back to the word events
            start = event.sample / sample_rate
            end = word_events[k + 1].sample / sample_rate if next_begin is not None else start
        words.append(WordEvent(word, start, max(end, start)))
    return words


def _word_text(text: str, begin: int, length: int, next_begin: int | None) -> str:
    """The word at `begin`, extended over words eSpeak spoke as part of it ("at a")."""
    word_end = begin + length
    gap = text[word_end:next_begin]
    last_alnum = max((i for i, c in enumerate(gap) if c.isalnum()), default=-1)
    return text[begin : word_end + last_alnum + 1]


# --------------------------------------------------------------------------- ctypes


class _EventId(ctypes.Union):
    _fields_ = (
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),  # phoneme mnemonic, NUL-terminated unless 8 long
    )


class _EspeakEvent(ctypes.Structure):
    """espeak_EVENT; 40 bytes on 64-bit (6 ints, a pointer, an 8-byte union)."""

    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),  # samples since the start of the message
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent)
)


class _Collector:
    """The synth callback: accumulates audio chunks and events."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.events: list[_RawEvent] = []

    def __call__(self, wav: Any, num_samples: int, events: Any) -> int:
        if wav and num_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            phoneme = ""
            if event.type == _EVENT_PHONEME:
                phoneme = bytes(event.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                phoneme = phoneme.strip()
            self.events.append(
                _RawEvent(event.type, event.text_position, event.length, event.sample, phoneme)
            )
            i += 1
        return 0  # continue synthesis

    def samples(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)


_lock = threading.Lock()
_library_copy: dict[str, Any] = {}  # "path" (and "fd") of this process's private copy


def _reset_after_fork() -> None:
    # A fork taken while another thread synthesised would leave the lock held forever,
    # and that thread's half-used library mapped at our copy's path, where dlopen() would
    # find it again. So the child starts with a new lock and makes its own copy.
    global _lock
    _lock = threading.Lock()
    inherited_fd = _library_copy.pop("fd", None)
    _library_copy.clear()
    if inherited_fd is not None:
        os.close(inherited_fd)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _espeakng_loader() -> Any:
    try:
        import espeakng_loader
    except ImportError as error:
        raise RuntimeError(
            "libespeak-ng is not available: `pip install espeakng-loader`"
        ) from error
    return espeakng_loader


def _variant_dir() -> Path:
    return Path(_espeakng_loader().get_data_path()) / "voices" / "!v"


def _check_variant_exists(voice: Voice) -> None:
    # eSpeak silently ignores an unknown variant, so check the file ourselves.
    variant = voice.variant
    if variant is None:
        return
    if not variant or "/" in variant or not (_variant_dir() / variant).is_file():
        raise ValueError(
            f"Voice.name {voice.name!r}: unknown variant {variant!r}; expected one of the "
            f"files in {_variant_dir()}, e.g. 'm3', 'f2', 'klatt'"
        )


def _private_library_path() -> str:
    """A copy of libespeak-ng that no one else in this process has loaded.

    dlopen() of the wheel's own file would share one instance (and its state) with any
    other user of the library, and could not be unloaded while they hold it.
    """
    path = _library_copy.get("path")
    if path is not None and os.path.exists(path):
        return path
    try:
        source = _espeakng_loader().get_library_path()
        if hasattr(os, "memfd_create"):  # an anonymous file: nothing to clean up
            fd = os.memfd_create("libespeak-ng-private.so")
            with open(source, "rb") as library, os.fdopen(os.dup(fd), "wb") as copy:
                shutil.copyfileobj(library, copy)
            # Name it by pid: glibc's dlopen() returns an object already loaded under the
            # same name, and a forked child may still have its parent's copy loaded.
            path = f"/proc/{os.getpid()}/fd/{fd}"
            _library_copy["fd"] = fd
        else:
            directory = tempfile.mkdtemp(prefix="espeak-ng-")
            atexit.register(_remove_if_owner, directory, os.getpid())
            path = shutil.copy(source, os.path.join(directory, os.path.basename(source)))
    except OSError as error:
        raise RuntimeError(
            f"cannot copy libespeak-ng ({error}); `pip install espeakng-loader`"
        ) from error
    _library_copy["path"] = path
    return path


def _remove_if_owner(directory: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:
        shutil.rmtree(directory, ignore_errors=True)


def _load_library() -> ctypes.CDLL:
    try:
        library = ctypes.CDLL(_private_library_path(), mode=os.RTLD_LOCAL)
    except OSError as error:
        raise RuntimeError(
            f"cannot load libespeak-ng ({error}); `pip install espeakng-loader`"
        ) from error
    library.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
    library.espeak_Initialize.restype = ctypes.c_int
    library.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
    library.espeak_SetSynthCallback.restype = None
    library.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
    library.espeak_SetVoiceByName.restype = ctypes.c_int
    library.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
    library.espeak_SetParameter.restype = ctypes.c_int
    library.espeak_ng_SetRandSeed.argtypes = (ctypes.c_long,)
    library.espeak_ng_SetRandSeed.restype = ctypes.c_int
    library.espeak_Synth.argtypes = (
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint),
        ctypes.c_void_p,
    )
    library.espeak_Synth.restype = ctypes.c_int
    library.espeak_Synchronize.restype = ctypes.c_int
    library.espeak_Terminate.restype = ctypes.c_int
    return library


def _run_espeak(text: str, voice: Voice) -> tuple[np.ndarray, list[_RawEvent], int]:
    """(int16 samples, events, sample rate) from a freshly loaded library."""
    with _lock:
        library = _load_library()
        initialized = False
        try:
            data_path = _espeakng_loader().get_data_path().encode()
            sample_rate = library.espeak_Initialize(
                _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_PHONEME_EVENTS
            )
            if sample_rate <= 0:
                raise RuntimeError(
                    f"espeak_Initialize failed with data at {data_path.decode()!r}; "
                    "reinstall it: `pip install --force-reinstall espeakng-loader`"
                )
            initialized = True
            collector = _Collector()
            callback = _SynthCallback(collector)  # referenced until synthesis is over
            library.espeak_SetSynthCallback(callback)
            library.espeak_ng_SetRandSeed(_RANDOM_SEED)  # breath and Klatt noise
            if library.espeak_SetVoiceByName(voice.name.encode()) != _EE_OK:
                raise ValueError(
                    f"Voice.name {voice.name!r}: unknown eSpeak voice; expected e.g. one of "
                    f"{', '.join(ENGLISH_VOICES)}, optionally with '+variant'"
                )
            for parameter, value in (
                (_PARAM_RATE, voice.rate),
                (_PARAM_VOLUME, _NORMAL_VOLUME),
                (_PARAM_PITCH, voice.pitch),
                (_PARAM_RANGE, voice.pitch_range),
            ):
                _check_status(library.espeak_SetParameter(parameter, value, 0), "SetParameter")
            encoded = text.encode("utf-8")
            buffer = ctypes.create_string_buffer(encoded)
            _check_status(
                library.espeak_Synth(
                    buffer, len(buffer), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
                ),
                "Synth",
            )
            _check_status(library.espeak_Synchronize(), "Synchronize")
        finally:
            if initialized:
                library.espeak_Terminate()
            _unload(library)
        return collector.samples(), collector.events, sample_rate


def _check_status(status: int, call: str) -> None:
    if status != _EE_OK:
        raise RuntimeError(f"espeak_{call} failed with status {status}")


# POSIX dlclose(); FreeLibrary() on Windows.
_dlclose: Callable[[int], Any] = getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary


def _unload(library: ctypes.CDLL) -> None:
    _dlclose(library._handle)
