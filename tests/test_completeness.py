"""The record says what was said, all of it: every stretch of speech is a line on every path —
with text, or flagged for the clerk to replay and type — and speech in another language is kept."""
import asyncio
import json

import httpx
import numpy as np
import pytest
import websockets

from courtscribe.asr.coverage import ENGINE_ERROR, UNRECOGNIZED
from courtscribe.text import looped
from courtscribe.audio import Audio, decode
from courtscribe.clients import stream_file
from courtscribe.records import formats
from courtscribe.records.store import RecordStore
from courtscribe.transcribe import transcribe_audio

SR = 16_000


@pytest.fixture(scope="module")
def hearing_audio(data_dir, tmp_path_factory) -> tuple[Audio, list[tuple[int, int]]]:
    """A 45 s recording of several people, Mandarin and then English, with pauses between turns;
    and where each piece of it lies (ms)."""
    zh = data_dir / "zh-smoke"
    english = decode(data_dir / "diarization" / "sample.wav").channel(0)[int(12.5 * SR):int(21.5 * SR)]
    pieces = [decode(zh / n).channel(0) for n in ("justice.wav", "welcome.wav", "custody.wav")] + [english]
    out, where, at = [], [], 0
    for p in pieces:
        gap = np.zeros(SR, np.float32)
        out += [p, gap]
        where.append((at * 1000 // SR, (at + p.size) * 1000 // SR))
        at += p.size + gap.size
    x = np.concatenate(out)
    path = tmp_path_factory.mktemp("hearing") / "hearing.wav"
    import soundfile as sf

    sf.write(path, x, SR)
    return decode(path), where, path


def covered(spans, lines) -> list[tuple[int, int]]:
    """The spans no line overlaps."""
    return [(a, b) for a, b in spans if not any(u.start_ms < b and u.end_ms > a for u in lines)]


@pytest.mark.slow
def test_every_speech_span_of_a_long_recording_is_in_the_file_record(components, hearing_audio):
    audio, where, _ = hearing_audio
    record = transcribe_audio(audio, components, speakers=1)
    speech = components.vad.segments(audio.channel(0))
    assert speech and covered(speech, record.utterances) == []
    assert not any(looped(u.text) for u in record.utterances)
    # the English witness is kept, in English, not dropped or translated
    a, b = where[-1]
    english = [u for u in record.utterances if u.start_ms < b and u.end_ms > a and u.text]
    assert english and all(u.language == "en" for u in english), english
    assert "new jersey" in " ".join(u.text for u in english).lower()
    mandarin = [u for u in record.utterances if u.end_ms <= where[-1][0]]
    assert mandarin and all(u.language == "zh" for u in mandarin)


def test_an_engine_that_fails_leaves_flagged_lines_not_holes(components, hearing_audio, tmp_path):
    """Every decode fails (a GPU gone): the record still has a line for every stretch of speech,
    flagged, and every export shows the gap; the lines round-trip through the record store."""
    audio, _, _ = hearing_audio

    def broken(pieces, options):
        raise RuntimeError("CUDA error: device lost (injected)")

    record = transcribe_audio(audio, components, speakers=1, decode=broken)
    speech = components.vad.segments(audio.channel(0))
    assert record.utterances and covered(speech, record.utterances) == []
    for u in record.utterances:
        assert u.text == "" and u.flags == [UNRECOGNIZED, ENGINE_ERROR] and u.confidence == 0.0 and u.unrecognized
    first = record.utterances[0]
    note = first.shown_text
    assert note.startswith("〔00:") and note.endswith("未能识别，请核听录音〕")
    for fmt in ("txt", "srt", "vtt"):
        assert note in formats.render(record, fmt)
    import io

    import docx

    assert note in "\n".join(p.text for p in docx.Document(io.BytesIO(formats.render(record, "docx"))).paragraphs)
    from pypdf import PdfReader

    pdf_text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(formats.render(record, "pdf"))).pages)
    assert "未能识别" in pdf_text

    store = RecordStore(f"sqlite:///{tmp_path / 'records.db'}")
    hid = store.import_record(record, actor="test")
    stored = store.record(hid).utterances
    assert [(u.start_ms, u.end_ms, u.flags) for u in stored] == [(u.start_ms, u.end_ms, u.flags) for u in record.utterances]
    assert store.verify(hid).ok
    # the clerk types what the audio says: the utterance keeps its flag, and reads as typed
    store.edit(hid, stored[0].id, "我想问我在滨海新区有房。", actor="书记员")
    typed = store.utterance(hid, stored[0].id)
    assert typed.flags == [UNRECOGNIZED, ENGINE_ERROR] and not typed.unrecognized
    assert typed.shown_text == "我想问我在滨海新区有房。" and store.verify(hid).ok


@pytest.mark.slow
def test_every_utterance_the_live_vad_closes_becomes_a_line(server, hearing_audio):
    """Live: each utterance the streaming VAD ends (an ``endpoint`` on the clerk's screen) gets its
    final, with text or flagged, and the English witness's speech is kept in English."""
    _, where, path = hearing_audio
    hearing = "h-complete"
    ws = server.replace("http", "ws")

    async def main():
        events: list[dict] = []
        async with websockets.connect(f"{ws}/v1/hearings/{hearing}/events") as sub:
            async def watch():
                async for raw in sub:
                    events.append(json.loads(raw))
            watcher = asyncio.create_task(watch())
            result = await stream_file(f"{ws}/v1/stream", path, hearing_id=hearing, speed=0)
            for _ in range(100):  # the last final reaches the screen just after the source's own copy
                if {e["utterance_id"] for e in events if e["type"] == "final"} >= {f["utterance_id"] for f in result.finals}:
                    break
                await asyncio.sleep(0.1)
            watcher.cancel()
        return result, events

    result, events = asyncio.run(main())
    ended = {e["utterance_id"] for e in events if e["type"] == "endpoint"}
    finals = {f["utterance_id"]: f["utterance"] for f in result.finals}
    assert ended and ended <= set(finals), ended - set(finals)
    assert all(u["text"] or UNRECOGNIZED in u["flags"] or u["end_ms"] - u["start_ms"] < 300 for u in finals.values())
    assert not any(looped(u["text"]) for u in finals.values())
    stored = httpx.get(f"{server}/v1/hearings/{hearing}").json()["utterances"]
    assert {u["id"] for u in stored} == set(finals)
    a, b = where[-1]
    english = [u for u in finals.values() if u["start_ms"] < b and u["end_ms"] > a and u["text"]]
    assert english and all(u["language"] == "en" for u in english), english


def test_a_stretch_too_short_to_hold_speech_is_no_line_of_the_record():
    """A piece cut at the stream's very end (or a click the VAD took for speech) gave an empty,
    unflagged line in the record: "[01:16.511 - 01:16.511] 说话人1：". Nothing said, no line; what
    holds speech the engine gave no text for is still a flagged line."""
    import numpy as np

    from voices import run_live

    audio = np.zeros(16000 * 4, np.float32)
    lines = run_live(audio, [(1000, 1010), (2000, 3200)], [("好的", 2100, 3000)])
    assert [(u.text, u.flags) for u in lines] == [("好的", [])]
    lines = run_live(audio, [(1000, 1010), (2000, 3200)], [])  # the second span: speech without text
    assert [(u.start_ms, u.text, u.flags[:1]) for u in lines] == [(2000, "", ["unrecognized"])]
