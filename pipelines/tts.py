"""Real text-to-speech for tests and benchmarks: eSpeak NG through ctypes.

The ``espeakng-loader`` wheel carries ``libespeak-ng`` and its voice data, so
nothing is installed system-wide or downloaded. eSpeak NG is a rule-based
synthesizer: real phonemes, consonants and prosody that voice activity
detectors and SNR estimators treat as speech.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

__all__ = ['Espeak', 'engine', 'VOICES', 'SENTENCES']

VOICES = ('en-us', 'en-us+f2', 'en-us+m3', 'en+f4', 'en-gb-x-rp+m1', 'en-us+f5', 'en+m7',
          'en-gb-scotland+f3')
SENTENCES = (
    'The quick brown fox jumps over the lazy dog near the quiet river bank.',
    'Seven bright stars were shining above the hills when the children came home.',
    'Please call Stella and ask her to bring these things with her from the store.',
    'A large market opens its doors every morning before the busy people arrive.',
    'The birch canoe slid on the smooth planks while the sun was setting slowly.',
    'Glue the sheet to the dark blue background and leave it to dry overnight.',
    'It is easy to tell the depth of a well by dropping a small stone into it.',
    'These days a chicken leg is a rare dish in the little town by the sea.',
    'Rice is often served in round bowls with fresh herbs and a little lemon.',
    'The juice of lemons makes fine punch when it is mixed with cold water.',
    'The box was thrown beside the parked truck on the corner of the street.',
    'Four hours of steady work faced us before we could finally rest a while.',
)

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_ESPEAK_SSML = 0x10
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


class Espeak:
  """One eSpeak NG engine; the library is process-wide, so use one at a time."""
  def __init__(self):
    import espeakng_loader  # a test extra: only tests and benchmarks speak

    self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
    self.sample_rate = self._lib.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
    if self.sample_rate <= 0:
      raise RuntimeError('eSpeak NG failed to initialize')
    self._chunks: list[np.ndarray] = []
    self._callback = _CALLBACK(self._collect)  # kept alive as long as the engine
    self._lib.espeak_SetSynthCallback(self._callback)

  def _collect(self, wav, count, _events) -> int:
    if count > 0:
      self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
    return 0

  def say(self, text: str, *, voice: str = 'en-us', words_per_minute: int = 165,
          pitch: int = 50, ssml: bool = False) -> np.ndarray:
    """Float32 speech at :attr:`sample_rate` (22050 Hz).

    With ``ssml``, ``text`` is SSML: ``<prosody rate="90%" pitch="+5%">`` and
    ``<break time="80ms"/>`` vary a reading word by word.
    """
    if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
      raise ValueError(f'voice={voice!r} is not an eSpeak NG voice')
    self._lib.espeak_SetParameter(_ESPEAK_RATE, words_per_minute, 0)
    self._lib.espeak_SetParameter(_ESPEAK_PITCH, pitch, 0)
    self._chunks = []
    data = text.encode('utf-8')
    status = self._lib.espeak_Synth(ctypes.c_char_p(data), ctypes.c_size_t(len(data) + 1), 0,
                                    _POS_CHARACTER, 0, _ESPEAK_SSML if ssml else 0, None,
                                    None)
    self._lib.espeak_Synchronize()
    if status != 0 or not self._chunks:
      raise RuntimeError(f'eSpeak NG could not say {text[:40]!r} (status {status})')
    return np.concatenate(self._chunks).astype(np.float32) / 32768


@functools.lru_cache(maxsize=1)
def engine() -> Espeak:
  """The process's engine. eSpeak NG's state is process-wide: a second
  :class:`Espeak` in one process re-initializes the library under the first,
  which then crashes."""
  return Espeak()
