"""Mic-per-seat courtrooms: a neighbour's speech leaking into a seat mic is recorded once, under the
seat that spoke it; two people really speaking at once both stay. Built from real clips."""
import asyncio

import jiwer
import numpy as np

from courtscribe.text import for_scoring
from courtscribe.audio import Audio, decode
from courtscribe.diarization import bleed
from courtscribe.records import Role
from courtscribe.transcribe import transcribe_audio

SR = 16_000
SEATS = {0: ("justice.wav", 1.0, Role.presiding_judge), 1: ("custody.wav", 17.0, Role.plaintiff_agent),
         2: ("brexit.wav", 9.0, Role.defendant)}  # brexit overlaps justice for several seconds


def courtroom(data_dir, bleed_db=(-12, -20), delay_ms=(3, 6)):
    """Three seat mics; each speaker leaks into the next seat at -12 dB and the far one at -20 dB."""
    clips = {ch: decode(data_dir / "zh-smoke" / name).channel(0) for ch, (name, _, _) in SEATS.items()}
    total = int(40 * SR)
    direct = np.zeros((3, total), np.float32)
    for ch, (_, at, _) in SEATS.items():
        a = int(at * SR)
        direct[ch, a:a + clips[ch].size] = clips[ch]
    mics = direct.copy()
    for src in range(3):
        for dst in range(3):
            if src != dst:
                far = abs(src - dst) - 1
                d = delay_ms[far] * SR // 1000
                mics[dst, d:] += direct[src, :-d] * 10 ** (bleed_db[far] / 20)
    rng = np.random.default_rng(0)
    mics += rng.normal(0, 1e-3, mics.shape).astype(np.float32)  # room noise
    return Audio(mics, SR, SR, 3), clips


def test_correlated_louder_copy_is_bleed_and_real_overlap_is_not(data_dir):
    audio, _ = courtroom(data_dir)
    a = lambda ch, t: audio.channel(ch)[int(t * SR): int(t * SR) + 8_000]  # noqa: E731
    # 3 s: only the judge speaks; the plaintiff agent's mic carries the judge's bleed
    assert bleed.is_bleed(a(1, 3.0), [a(0, 3.0), a(2, 3.0)])
    assert not bleed.is_bleed(a(0, 3.0), [a(1, 3.0), a(2, 3.0)])
    # 11.5 s: judge and defendant both really speak, equally loud (at 11.0 s the judge pauses)
    assert not bleed.is_bleed(a(0, 11.5), [a(1, 11.5), a(2, 11.5)])
    assert not bleed.is_bleed(a(2, 11.5), [a(0, 11.5), a(1, 11.5)])


def test_the_pauses_between_a_neighbours_words_do_not_make_its_bleed_this_seats_line(data_dir):
    """An utterance the VAD closed on a seat carrying only a neighbour's bleed, with that
    neighbour's pauses in it: the pauses are bleed of nothing (not bleed blocks), but they carry
    nothing on this seat either, so the share that decides is over voiced blocks. A seat's own words
    with some bleed beside them stay its own."""
    judge = decode(data_dir / "zh-smoke" / "justice.wav").channel(0)[: 4 * SR]
    own = decode(data_dir / "zh-smoke" / "custody.wav").channel(0)[SR: 5 * SR]
    rng = np.random.default_rng(0)
    pause = rng.normal(0, 1e-4, 2 * SR).astype(np.float32)
    speaker = np.concatenate([judge[: 2 * SR], pause, judge[2 * SR:]])  # 2 s of the judge's silence inside
    d = 3 * SR // 1000
    seat = np.concatenate([np.zeros(d, np.float32), speaker[:-d]]) * 10 ** (-12 / 20) + rng.normal(0, 1e-4, speaker.size).astype(np.float32)
    room = bleed.RoomAudio()
    room.write(0, 0, speaker)
    room.write(1, 0, seat)
    check = room.bleed_blocks(1, 0, seat)
    assert check.complete and check.blocks.mean() < 0.8  # the pauses are not bleed blocks...
    assert bleed.voiced_share(seat, check.blocks) >= 0.8  # ...and do not count: the judge's, not this seat's
    talking = seat.copy()
    talking[-own.size:] += own  # the seat's own words over the judge's last 4 s
    mixed = bleed.RoomAudio()
    mixed.write(0, 0, speaker)
    mixed.write(1, 0, talking)
    assert bleed.voiced_share(talking, mixed.bleed_blocks(1, 0, talking).blocks) < 0.8
    assert bleed.voiced_share(np.zeros(SR, np.float32), np.zeros(2, bool)) == 0.0


def test_a_late_neighbour_is_waited_for_and_a_stalled_one_leaves_the_line_flagged(data_dir):
    """A seat's check waits for a neighbour's audio that is still coming (a loaded link between
    gateways is late, not gone), however far behind; a neighbour that stops sending leaves the
    check incomplete, which the session flags on the line instead of dropping or trusting it."""
    import threading
    import time

    audio, _ = courtroom(data_dir)
    judge, agent = audio.channel(0)[: 6 * SR], audio.channel(1)[: 6 * SR]
    room = bleed.RoomAudio()
    room.PEER_STALL_S = 10.0  # each step below comes well within it
    room.write(1, 0, agent)
    room.write(0, 0, judge[:SR])  # the judge's gateway is 5 s behind...

    def catch_up():  # ...and catches up in 100 ms steps, each one a wake-up for the waiting check
        for k in range(SR, judge.size, SR // 10):
            time.sleep(0.02)  # pacing only: the check waits however long the steps take
            room.write(0, k, judge[k:k + SR // 10])

    feeder = threading.Thread(target=catch_up)
    feeder.start()
    check = room.bleed_blocks(1, 0, agent)
    feeder.join()
    assert check.complete and check.blocks[2:].mean() > 0.8  # from 1 s, the judge's words on the agent's seat: bleed

    stalled = bleed.RoomAudio()
    stalled.PEER_STALL_S = 0.2
    stalled.write(1, 0, agent)
    stalled.write(0, 0, judge[:SR])  # and nothing more
    check = stalled.bleed_blocks(1, 0, agent)
    assert not check.complete
    assert not check.blocks[2:].any()  # nothing to compare with there: kept, and the line is flagged
    stalled.remove(0)
    assert stalled.bleed_blocks(1, 0, agent).complete  # a neighbour that left is not waited for


def test_every_utterance_lands_once_under_the_right_seat(data_dir, components, manifest):
    audio, clips = courtroom(data_dir)
    record = transcribe_audio(audio, components, roles={ch: role for ch, (_, _, role) in SEATS.items()})
    for ch, (name, at, role) in SEATS.items():
        lines = [u for u in record.utterances if u.channel == ch]
        assert lines and all(u.role == role for u in lines)
        # nothing on this seat outside the time its own speaker talked: no bleed transcribed
        end = at + clips[ch].size / SR
        assert all(at - 0.5 <= u.start_ms / 1000 and u.end_ms / 1000 <= end + 0.5 for u in lines), (name, lines)
        said = for_scoring("".join(u.text for u in lines))
        assert jiwer.cer(for_scoring(manifest[name]["text"]), said) < 0.35, (name, said)


def test_live_seat_mics_record_each_sentence_once(server, data_dir):
    """Two seat mics of one hearing streaming at once over the real server: the judge's sentences
    leak into the plaintiff agent's mic at -12 dB, and the agent's into the judge's; each sentence
    is stored once, under the seat that spoke it."""
    import asyncio

    import httpx

    from courtscribe.clients.stream_client import stream

    judge = decode(data_dir / "zh-smoke" / "justice.wav").channel(0)
    agent = decode(data_dir / "zh-smoke" / "custody.wav").channel(0)
    total = judge.size + agent.size + 2 * SR
    direct = np.zeros((2, total), np.float32)
    direct[0, :judge.size] = judge
    direct[1, judge.size + SR: judge.size + SR + agent.size] = agent
    d = 3 * SR // 1000
    mics = direct.copy()
    mics[1, d:] += direct[0, :-d] * 10 ** (-12 / 20)
    mics[0, d:] += direct[1, :-d] * 10 ** (-12 / 20)

    async def chunks(x):
        for i in range(0, x.size, 3_200):
            yield x[i:i + 3_200]

    async def main():
        return await asyncio.gather(*(stream(server.replace("http", "ws") + "/v1/stream", chunks(mics[ch]), speed=2,
                                             hearing_id="h-seats", channel=ch, role=role)
                                      for ch, role in ((0, "审判长"), (1, "原告代理人"))))

    asyncio.run(main())
    lines = httpx.get(f"{server}/v1/hearings/h-seats").json()["utterances"]
    assert lines
    for u in lines:
        if u["channel"] == 0:
            assert u["end_ms"] <= judge.size / 16 + 1_000, u  # the judge's seat: only while the judge spoke
        else:
            assert u["start_ms"] >= judge.size / 16 - 500, u  # the agent's seat: none of the judge's bleed
    judge_text = for_scoring("".join(u["text"] for u in lines if u["channel"] == 0))
    agent_text = for_scoring("".join(u["text"] for u in lines if u["channel"] == 1))
    assert judge_text and agent_text


def test_a_seat_whose_neighbour_stalls_keeps_its_lines_flagged_as_possible_crosstalk(server, data_dir):
    """The judge's link stops sending audio (held open by keepalives) while the agent's mic carries
    the judge's bleed: the agent's seat cannot be checked against the judge's audio, so what it
    hears is kept (never a hole) but flagged crosstalk_unchecked for the clerk; when the judge's
    audio comes again, the agent's later lines are checked (bleed: not stored on that seat) and the
    judge's own lines are stored as usual, unflagged."""
    import asyncio
    import json

    import httpx
    import websockets

    from courtscribe.audio import float_to_pcm16
    from courtscribe.clients.stream_client import stream
    from courtscribe.records.model import CROSSTALK_UNCHECKED

    judge = decode(data_dir / "zh-smoke" / "justice.wav").channel(0)
    mics = np.zeros((2, judge.size + SR), np.float32)
    mics[0, :judge.size] = judge
    d = 3 * SR // 1000
    mics[1, d:judge.size + d] = judge * 10 ** (-12 / 20)
    url = server.replace("http", "ws") + "/v1/stream"

    async def main():
        flagged = asyncio.Event()  # the agent's seat stored a line it could not check

        def on_agent(e):
            if e["type"] == "final" and e["utterance"]["text"]:
                flagged.set()

        async def judge_seat():
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"type": "start", "hearing_id": "h-stall", "channel": 0, "sample_rate": SR,
                                          "role": "审判长"}))
                assert json.loads(await ws.recv())["type"] == "ready"
                await ws.send(float_to_pcm16(mics[0, :SR]))
                while not flagged.is_set():  # the stalled link: open, but no audio
                    await ws.send(json.dumps({"type": "keepalive"}))
                    try:
                        await asyncio.wait_for(flagged.wait(), 1.0)
                    except TimeoutError:
                        pass
                for i in range(SR, mics.shape[1], 3_200):
                    await ws.send(float_to_pcm16(mics[0, i:i + 3_200]))
                await ws.send(json.dumps({"type": "stop"}))
                async for raw in ws:
                    if json.loads(raw)["type"] == "end":
                        break

        async def agent_seat():
            async def chunks():
                for i in range(0, mics.shape[1], 3_200):
                    yield mics[1, i:i + 3_200]
            try:
                return await stream(url, chunks(), speed=0, hearing_id="h-stall", channel=1, role="原告代理人",
                                    on_event=on_agent)
            finally:
                flagged.set()

        return (await asyncio.gather(judge_seat(), agent_seat()))[1]

    heard = asyncio.run(main())
    lines = httpx.get(f"{server}/v1/hearings/h-stall").json()["utterances"]
    seat = [u for u in lines if u["channel"] == 1]
    assert seat, "the agent's seat heard the bleed and could not check it: its first line is kept"
    assert all(CROSSTALK_UNCHECKED in u["flags"] for u in seat), seat
    assert all(CROSSTALK_UNCHECKED in f["utterance"]["flags"] for f in heard.finals if f["utterance"]["text"])
    assert [u for u in lines if u["channel"] == 0 and u["text"]]  # the judge's lines...
    assert not any(CROSSTALK_UNCHECKED in u["flags"] for u in lines if u["channel"] == 0)  # ...unflagged


def test_a_seat_drops_only_short_wordless_stretches_between_its_own_words():
    """Where a neighbour's voice was muted out of a seat's utterance, a short stretch without text
    between the seat's words is that neighbour's; an engine failure, or an utterance with no words at
    all, stays a flagged line to replay."""
    from courtscribe.asr.base import Hypothesis
    from courtscribe.asr.coverage import ENGINE_ERROR, gap
    seat_pieces = bleed.Seat(np.zeros(0, np.float32), muted=True).pieces

    said = Hypothesis("我同意。", 0, 1500)
    short, failed = gap(1500, 2500, "empty", "zh"), gap(1500, 2500, ENGINE_ERROR, "zh")
    assert seat_pieces([said, short]) == [said]
    assert seat_pieces([said, failed]) == [said, failed]
    assert seat_pieces([short]) == [short]  # the whole utterance: never an empty, unflagged line


def test_a_word_said_over_a_louder_neighbour_is_kept_and_flagged_not_dropped_as_their_bleed():
    """The judge speaks 3 s; the defendant says "对" into his own mic during it. Most of his seat's
    utterance is the judge's bleed, not all: his word is decoded and kept (flagged 可能串音), where
    the whole utterance used to be dropped as the judge's."""
    from courtscribe.records.model import CROSSTALK_UNCHECKED

    from voices import SR, run_live

    judge, word, lag = _speechlike(3000, 1), _speechlike(400, 2), 5 * SR // 1000
    judges_seat, his_seat = judge.copy(), np.zeros_like(judge)
    his_seat[lag:] += 0.25 * judge[:-lag]
    his_seat[1600 * 16:2000 * 16] += word
    judges_seat[1600 * 16 + lag:2000 * 16 + lag] += 0.25 * word
    room = bleed.RoomAudio()
    room.write(0, 0, np.concatenate([judges_seat, np.zeros(SR, np.float32)]))
    lines = run_live(np.concatenate([his_seat, np.zeros(SR, np.float32)]), [(0, 3000)], [("对", 1620, 1950)],
                     role=Role.defendant, room=room, channel=1)
    assert [u.text for u in lines] == ["对"] and CROSSTALK_UNCHECKED in lines[0].flags
    nothing_of_his = run_live(np.concatenate([his_seat, np.zeros(SR, np.float32)]), [(0, 3000)], [],
                              role=Role.defendant, room=room, channel=1)
    assert nothing_of_his == []  # no word heard in what is left: the judge's, recorded on the judge's seat


def _speechlike(ms: int, seed: int) -> np.ndarray:
    """Noise with a syllable rhythm: a voice the bleed check compares by waveform and level."""
    x = np.random.default_rng(seed).standard_normal(ms * 16)
    return (0.1 * x * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(x.size) / 16_000))).astype(np.float32)


def _question_and_answer() -> tuple[np.ndarray, "bleed.RoomAudio"]:
    """The judge asks for 2 s on seat 0; the defendant answers 2.2–2.8 s on seat 1, each heard on
    the other's mic 12 dB down: his seat's audio, and the room holding the judge's."""
    judge, answer, lag = _speechlike(2000, 1), _speechlike(600, 2), 5 * SR // 1000
    judges_seat, his_seat = np.zeros(4 * SR, np.float32), np.zeros(4 * SR, np.float32)
    judges_seat[:2 * SR] = judge
    his_seat[lag:2 * SR + lag] += 0.25 * judge
    his_seat[2200 * 16:2800 * 16] += answer
    judges_seat[2200 * 16 + lag:2800 * 16 + lag] += 0.25 * answer
    room = bleed.RoomAudio()
    room.write(0, 0, judges_seat)
    return his_seat, room


def test_a_seats_answer_after_a_neighbours_question_is_decoded_with_it_and_only_its_words_kept():
    """The judge asks for 2 s; the defendant answers 是。 into his own mic. His seat's utterance opens
    with the judge's bleed: decoded muted, with seconds of silence before it, Whisper took the answer
    for no speech (an ID number, 是。, 没有。 lost from their own seat's line, live). It is decoded as
    it came and the judge's words are dropped by their waveform; the question is no line of his."""
    from courtscribe.asr.base import DecodeOptions

    from voices import ScriptEngine, run_live

    decoded: list[int] = []

    class Heard(ScriptEngine):
        def transcribe_many(self, pieces, options=DecodeOptions()):
            decoded.extend(offset for _, offset in pieces)
            return super().transcribe_many(pieces, options)

    his_seat, room = _question_and_answer()
    words = [("签的字", 300, 1000), ("是你的吗？", 1000, 1900), ("是。", 2250, 2750)]  # his mic hears both
    lines = run_live(his_seat, [(0, 3000)], words, role=Role.defendant, room=room, channel=1,
                     engine=Heard(words))
    assert [u.text for u in lines] == ["是。"]  # the judge's words dropped; no flagged gap line for them
    assert decoded == [0]  # decoded as it came, the question's audio before the answer
    assert lines[0].start_ms >= 2000  # his line begins with his voice: never before the question's


def test_a_seat_previews_nothing_of_a_neighbours_question_only_its_own_answer():
    """The judge asks for 2 s; the defendant answers into his own mic. While his seat's utterance is
    only the judge's bleed it is previewed for nobody (the judge's words shown tentatively under 被告,
    and decoded once per seat); once his voice comes, his previews hold none of the question. A
    mixed mic (no neighbours to compare with) is previewed from its first word, as before."""
    from courtscribe.asr.base import EngineStream

    from voices import ScriptEngine, run_live

    class Fed(EngineStream):
        def __init__(self, engine):
            self.engine = engine

        def accept(self, audio):  # in the decode worker's thread
            self.engine.fed.append(np.asarray(audio, np.float32).copy())
            if np.abs(audio).any():
                self.engine.loop.call_soon_threadsafe(self.engine.heard.set)

        def finalize(self):
            return []

    class Previewed(ScriptEngine):
        def __init__(self):
            super().__init__([])
            self.fed: list[np.ndarray] = []
            self.heard: asyncio.Event | None = None

        def open_stream(self, *, offset_ms=0, options=None):
            self.loop = asyncio.get_running_loop()
            self.heard = self.heard or asyncio.Event()
            return Fed(self)

        async def previewed_by(self, ms, at_ms):  # a preview with sound in it is decoded before the
            if ms == at_ms:  # utterance ends: waited for, not timed
                await asyncio.wait_for(self.heard.wait(), 60)

    his_seat, room = _question_and_answer()
    seat, mixed = Previewed(), Previewed()
    run_live(his_seat, [(0, 3000)], [], role=Role.defendant, room=room, channel=1, engine=seat,
             pause=lambda ms: seat.previewed_by(ms, 2800))
    run_live(his_seat, [(0, 3000)], [], engine=mixed, pause=lambda ms: mixed.previewed_by(ms, 1000))
    heard = np.concatenate(seat.fed) if seat.fed else np.zeros(0, np.float32)
    assert not np.abs(heard[:2000 * 16]).any()  # nothing of the question reached his previews
    assert np.abs(heard).any()  # his answer did
    assert np.abs(np.concatenate(mixed.fed)[:2000 * 16]).any()  # a mixed mic's previews hear everyone


def test_a_seats_previews_wait_for_a_neighbour_still_coming_and_not_for_one_that_stalled():
    """His seat is ahead of the judge's (the judge's audio arrives late, a loaded server): the blocks
    the judge's audio covers are the judge's bleed, the rest waits for it, never taken for his own
    voice; once the judge's link has sent nothing for ``PEER_STALL_S`` it is not waited for."""
    judge, lag = _speechlike(2000, 1), 5 * SR // 1000
    his_seat = np.zeros(2 * SR, np.float32)
    his_seat[lag:] += 0.25 * judge[:-lag]
    room = bleed.RoomAudio()
    room.write(0, 0, judge[:SR])  # only the judge's first second is here yet
    voice = bleed.OwnVoice(start=0, shift=0)
    assert voice.update(room, 1, his_seat) is None and voice.checked == SR
    room.PEER_STALL_S = 0.0  # the judge's link went quiet
    assert voice.update(room, 1, his_seat[voice.checked:]) == SR  # compared with nobody: his own
