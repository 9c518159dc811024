"""Typed live events (streaming/events.py): their JSON is docs/protocol.md's, and what one gateway
sends another reads back as the same event."""
import pytest

from courtscribe.records.model import Role, Token, Utterance
from courtscribe.streaming import events
from courtscribe.streaming.protocol import error_event, final_event, partial_event

SAID = Utterance(id="c0-0001", start_ms=1200, end_ms=3400, channel=0, speaker="审判长", role=Role.presiding_judge,
                 text="现在开庭。", tokens=[Token(text="现在", start_ms=1200, end_ms=1800)])
EVERY_KIND = [
    partial_event("c0-0001", 0, "审判长", 1200, 2000, "现在", "h1", Role.presiding_judge, stable=1, continues=True),
    final_event(SAID, "h1"),
    error_event("engine_error", "utterance c0-0002 could not be decoded", utterance_id="c0-0002", hearing_id="h1",
                start_ms=3400, end_ms=5200),
    events.SpeakerUpdate(hearing_id="h1", utterance_id="c0-0001", speaker="原告", role=Role.plaintiff, participant="张三"),
    events.Level(hearing_id="h1", channel=0, speaker="审判长", rms_db=-31.5, peak_db=-12.0, speech=True, at_ms=2000),
    events.Endpoint(hearing_id="h1", utterance_id="c0-0001", channel=0, end_ms=3400),
    events.Channel(hearing_id="h1", channel=0, speaker="审判长", connected=True),
    events.Status(hearing_id="h1", status="open"),
    events.UtteranceChanged(hearing_id="h1", utterance_id="c0-0001", utterance=SAID),
    events.UtteranceRemoved(hearing_id="h1", utterance_id="c0-0002", merged_into="c0-0001"),
    events.ParticipantAdded(hearing_id="h1", participant={"name": "张三", "role": "plaintiff"}),
    events.InterruptionAdded(hearing_id="h1", interruption={"kind": "paused", "at_ms": 9000, "reason": "休庭"}),
    events.Vocabulary(hearing_id="h1", words=["肯德基"]),
    events.CaptionsSwitched(hearing_id="h1", blanked=True, at_ms=9000, reason="不公开内容"),
    events.StoreRecovered(hearing_id="h1", utterances=3, lines=3),
]


@pytest.mark.parametrize("event", EVERY_KIND, ids=lambda e: e.type)
def test_an_event_crosses_to_another_gateway_as_itself(event):
    wire = event.wire()
    assert next(iter(wire)) == "type" and wire["type"] == event.type
    assert events.parse(wire) == event and events.parse(wire).wire() == wire


def test_the_json_is_the_protocols():
    assert partial_event("u", 1, "原告", 0, 500, "我", None).wire() == {
        "type": "partial", "hearing_id": None, "utterance_id": "u", "channel": 1, "speaker": "原告", "role": None,
        "start_ms": 0, "end_ms": 500, "text": "我", "stable": 0, "continues": False, "ahead": False}
    final = final_event(SAID, "h1").wire()
    assert final["utterance"] == SAID.model_dump(mode="json") and "dictation" not in final  # only when given
    assert error_event("odd_pcm", "odd frame").wire() == {"type": "error", "code": "odd_pcm", "message": "odd frame"}
    assert error_event("disk_full", "x", fatal=True, channel=2).wire()["fatal"] is True


def test_a_changed_utterance_is_also_sent_under_its_first_name():
    changed = events.UtteranceChanged(hearing_id="h1", utterance_id="c0-0001", utterance=SAID)
    old = events.first_name(changed)
    assert isinstance(old, events.Line) and old.wire() == {**changed.wire(), "type": "line"}
    removed = events.UtteranceRemoved(hearing_id="h1", utterance_id="b", merged_into="a")
    assert events.first_name(removed).wire() == {**removed.wire(), "type": "line_removed"}
    assert events.first_name(events.Status(hearing_id="h1", status="open")) is None


def test_what_is_not_an_event_is_refused():
    for bad in ({"type": "nonsense"}, {"type": "partial", "text": "缺字段"}, {"type": "status", "hearing_id": "h",
                                                                          "status": "open", "extra": 1}):
        with pytest.raises(ValueError):
            events.parse(bad)
