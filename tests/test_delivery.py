"""The last step of a live line (streaming/delivery.py), against a real record store."""
import asyncio
import uuid

from courtscribe.records.model import UNRECOGNIZED, Utterance
from courtscribe.streaming.delivery import Delivery
from courtscribe.streaming.source import Sinks
from courtscribe.streaming.speakers import Label


def test_a_lines_flagged_gaps_take_its_speaker_when_diarization_relabels_it(store):
    """The diarizer later hears an earlier line as another voice: the stretch of that line's speech
    the engine gave no text for is theirs too, never left with the voice it no longer is."""
    hid = f"h-{uuid.uuid4().hex[:8]}"
    store.create_hearing(actor="书记员甲", hearing_id=hid)
    sent = []

    async def on_final(u, voice):
        return await asyncio.to_thread(store.machine_final, hid, u, voice=voice)

    async def on_relabel(uid, label):
        return await asyncio.to_thread(store.relabel, hid, uid, speaker=label.speaker, role=label.role,
                                       participant=label.participant, voice=label.voice)

    async def emit(event):
        sent.append(event)

    async def hearing():
        delivery = Delivery(Sinks(on_final=on_final, on_relabel=on_relabel), emit, "test", hid)
        heard = Label("说话人2", voice="说话人2")
        said = Utterance(id="u1", start_ms=0, end_ms=2000, speaker="说话人2", text="我同意。")
        gap = Utterance(id="u1-g1", start_ms=2000, end_ms=5000, speaker="说话人2", text="", flags=[UNRECOGNIZED])
        await delivery.line(said, None, heard)
        await delivery.line(gap, None, heard, gap_of="u1")
        await delivery.relabel("u1", Label("说话人1", voice="说话人1"))
    asyncio.run(hearing())
    assert {u.id: u.speaker for u in store.record(hid).utterances} == {"u1": "说话人1", "u1-g1": "说话人1"}
    assert {(e.utterance_id, e.speaker) for e in sent if e.type == "speaker_update"} == {
        ("u1", "说话人1"), ("u1-g1", "说话人1")}
