"""Loaded by a server started with this folder on PYTHONPATH (tests/test_faults.py): the real Whisper
engine, except that the first utterance decoded with the hotword $COURTSCRIBE_TEST_FAIL_HOTWORD makes
it raise, as a GPU engine does on a device error — every time that utterance is tried (in a batch or
alone), so the scheduler's retry cannot hide it. Only the test's server process carries it."""
import os

POISON = os.environ.get("COURTSCRIBE_TEST_FAIL_HOTWORD")

if POISON:
    from courtscribe.asr.base import DecodeOptions
    from courtscribe.asr.whisper_engine import WhisperEngine

    _real = WhisperEngine.transcribe_many
    _bad: set[tuple[int, int]] = set()  # (offset, samples) of the utterance that fails

    def transcribe_many(self, pieces, options=DecodeOptions()):
        if POISON in options.hotwords:
            if not _bad:
                _bad.add((pieces[0][1], pieces[0][0].size))
            if _bad & {(offset, audio.size) for audio, offset in pieces}:
                raise RuntimeError("CUDA error: an illegal memory access was encountered (injected)")
        return _real(self, pieces, options)

    WhisperEngine.transcribe_many = transcribe_many
