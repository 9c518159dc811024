"""The live hearings a server runs (``LiveHearings``): what every live connection shares, and a
source's way in and out (``join``/``leave``): admitted, joined to its hearing in the record store,
its vocabulary, seat room and voices set up; changes the hearing's screens and sources must learn
(``publish``, ``vocabulary_changed``, ``enrolled``). Protocols (server/stream_socket.py,
funasr_socket.py, realtime.py) speak to clients; the audio work lives in StreamSession."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Awaitable, Callable, Protocol

import numpy as np
import soxr

from ..asr.base import Engine
from ..asr.hotwords import merge
from ..asr.vad import Vad
from ..audio import SAMPLE_RATE, pcm16_to_float
from ..config import RoomFrontEnd
from ..diarization.bleed import RoomAudio
from ..diarization.embedding import SpeakerEncoder
from ..diarization.online import VoiceNumbers
from ..diarization.segmentation import Segmenter
from ..logs import get_logger
from ..records import archive
from ..records.archive import ChannelRecorder
from ..records.model import Participant, Pipeline, Role, Utterance
from ..db import unavailable
from ..records.spool import Spool, Written
from ..records.store import Locked, NotFound, RecordStore
from .events import Channel, Event, Status
from .hub import Hub
from .peers import Command, Peers
from .protocol import MAX_FRAME_BYTES, ErrorCode, StreamError, sample_rate
from .scheduler import DecodeScheduler
from .session import StreamSession
from .source import ANY_CHANNEL, SessionConfig, Sinks
from .speakers import Label, LiveSpeakers

log = get_logger(__name__)

IDLE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Admitted:
    """What a stream's gate decided: the hearing its audio goes into (None: none) and, for a hearing
    the stream creates, the court and courtroom it belongs to."""
    hearing_id: str | None
    court: str | None = None
    courtroom: str | None = None


# Called with the hearing id a stream names (None: none) before it starts: raises a fatal StreamError
# when the client may not send that audio. ``into_room``: a room's recorder naming none may be sent
# into its room's hearing (False for audio that is a file of its own, such as FunASR offline).
Gate = Callable[..., Awaitable[Admitted]]


async def open_gate(hearing_id: str | None, *, into_room: bool = True) -> Admitted:
    return Admitted(hearing_id)


class FinalWriter(Protocol):
    """Where a live source's utterances are written: the record store, or the spool in front of it."""

    def machine_final(self, hearing_id: str, u: Utterance, *, voice: str | None = None) -> Written: ...

    def relabel(self, hearing_id: str, uid: str, *, speaker: str, role: Role | None = None,
                participant: str | None = None, voice: str | None = None) -> Written: ...


RESUME_MS = 660_000  # how far back a source coming back may place its audio: what it keeps, and a minute


@dataclass
class LiveHearings:
    """What every live connection shares: one engine, one streaming VAD model, one scheduler, one hub."""

    engine: Engine
    vad: Vad
    scheduler: DecodeScheduler
    hub: Hub
    idle_timeout_s: float = IDLE_TIMEOUT_S
    records: RecordStore | None = None  # where finals of streams that name a hearing are kept
    archive: Path | None = None  # where their audio is kept
    pipeline: Pipeline | None = None
    lexicon: tuple[str, ...] = ()  # the court-wide legal lexicon: hotwords of every stream
    languages: tuple[str, ...] = ("zh", "en")  # what a hearing may hear (Settings.languages)
    max_segment_ms: int = 30_000  # the engine's longest decode window
    max_audio_s: float = 6 * 3600  # the most a whole file sent over a socket (FunASR offline) may decode to
    speaker_encoder: SpeakerEncoder | None = None  # labels the utterances of mixed-channel sources
    segmenter: Segmenter | None = None  # cuts a mixed-channel utterance at its speaker changes
    rooms: dict[str, RoomAudio] = field(default_factory=dict)  # hearing id → its seat mics' recent audio
    numbers: dict[str, VoiceNumbers] = field(default_factory=dict)  # hearing id → its voices' numbers
    spool: Spool | None = None  # where finals wait while the record store is away
    sources: dict[str, dict[StreamSession, tuple[str, ...]]] = field(default_factory=dict)  # hearing → its
    # running sources, each with the hotwords its client sent
    seats: dict[str, dict[int, SessionConfig]] = field(default_factory=dict)  # hearing → channel → its source here
    peers: Peers | None = None  # the other gateway replicas, when there are several
    front_ends: Callable[[str | None], RoomFrontEnd] = lambda room: RoomFrontEnd(asr="none", vad="none")

    def vocabulary_changed(self, hearing_id: str, vocabulary: list[str], *, relay: bool = True) -> int:
        """The hearing's hotwords or participants changed: its running sources decode their next
        utterances with the new words (the clerk adds the name the engine kept missing), here and
        on the other gateways. Returns how many sources run with them."""
        running = self.sources.get(hearing_id, {})
        for session, own in list(running.items()):
            session.use_hotwords(merge(own, vocabulary, self.lexicon))
        if relay and self.peers is not None:
            self.peers.command(hearing_id, "vocabulary", words=vocabulary)
        return len(running) + (len(self.peers.sources(hearing_id)) if relay and self.peers else 0)

    async def own_hotwords(self, session: StreamSession, words: tuple[str, ...]) -> None:
        """A source's client changed its own hotwords mid-stream (a Realtime session.update's
        prompt): its next utterances decode with them and, as before, its hearing's vocabulary."""
        hid = session.cfg.hearing_id
        vocabulary = await asyncio.to_thread(self.records.vocabulary, hid) if hid and self.records else []
        if hid and session in self.sources.get(hid, {}):
            self.sources[hid][session] = tuple(words)
        session.use_hotwords(merge(tuple(words), vocabulary, self.lexicon))

    def enrolled(self, hearing_id: str, person: Participant, voice: np.ndarray, *, relay: bool = True) -> None:
        """A voice enrolled during the hearing: its running mixed-channel sources know it at once."""
        for session in list(self.sources.get(hearing_id, {})):
            if session.sinks.speakers is not None:  # a mixed source: its diarizer learns the voice
                session.sinks.speakers.enroll(person, voice)
        if relay and self.peers is not None:
            self.peers.command(hearing_id, "enrolled", person=person, voice=voice)

    def room(self, hearing_id: str) -> RoomAudio:
        """The hearing's seat-mic audio here (its seats on other gateways included, through the peers)."""
        room = self.rooms.get(hearing_id)
        if room is None:
            room = self.rooms[hearing_id] = RoomAudio()
            if (peers := self.peers) is not None:
                room.relay = lambda channel, at, audio: peers.room_audio(hearing_id, channel, at, audio)
        return room

    def voice_named(self, hearing_id: str, voice: str, label: Label | None, *, channel: int,
                    relay: bool = True) -> None:
        """A clerk put a voice (说话人N) of one channel in a person's mouth (``label``; None: undone):
        that channel's running source labels its next lines so, here or on another gateway."""
        for session in list(self.sources.get(hearing_id, {})):
            if session.sinks.speakers is not None and session.cfg.channel == channel:
                session.sinks.speakers.name(voice, label)
        if relay and self.peers is not None:
            self.peers.command(hearing_id, "voice_named", voice=voice, channel=channel,
                               label=None if label is None else vars(label))

    def apply(self, hearing_id: str, command: Command) -> None:
        """Another gateway's command for this hearing's sources here."""
        p = command.payload
        if command.name == "vocabulary":
            self.vocabulary_changed(hearing_id, p["words"], relay=False)
        elif command.name == "voice_named":
            self.voice_named(hearing_id, p["voice"], Label(**p["label"]) if p["label"] else None,
                             channel=p["channel"], relay=False)
        elif command.name == "enrolled":
            self.enrolled(hearing_id, p["person"], np.asarray(p["voice"], np.float32), relay=False)

    def connected(self, hearing_id: str) -> list[dict]:
        """The hearing's sources connected now, on this gateway and the others."""
        here = [{"channel": s.cfg.channel, "speaker": s.speaker} for s in list(self.sources.get(hearing_id, {}))]
        return sorted(here + (self.peers.sources(hearing_id) if self.peers else []), key=lambda x: x["channel"])

    @property
    def gateway(self) -> dict:
        """Which gateway replica a socket reached (court IT's logs, the cluster tests), when there are several."""
        return {"gateway": self.peers.origin} if self.peers else {}

    # -- a source's way in and out --------------------------------------------------------
    async def join(self, cfg: SessionConfig, emit: Callable[[Event], Awaitable[None]]) -> StreamSession:
        """Admit a stream; one that names a hearing joins it in the record store: its utterances are stored
        before they are announced and its times continue the hearing's timeline."""
        if not cfg.hearing_id and cfg.channel == ANY_CHANNEL:
            cfg.channel = 0
        if cfg.hearing_id:
            mapped = await asyncio.to_thread(self._mapped, cfg.hearing_id)
            if cfg.seat and cfg.role is None:  # a seat mic naming only its channel: the seat mapped to it
                cfg.role = self._mapped_seat(cfg, mapped)
            self._seat(cfg, set(mapped or {}))
        try:
            sid = self.scheduler.admit(cfg.seat_of)
        except BaseException:
            self._unseat(cfg)
            raise
        sinks = Sinks()
        try:
            vocabulary: list[str] = []
            if self.records is not None and cfg.hearing_id:
                vocabulary = await self._join_record(self.records, cfg.hearing_id, cfg, sinks)
            own = tuple(cfg.options.hotwords)
            cfg.options = replace(cfg.options, hotwords=merge(own, vocabulary, self.lexicon), languages=self.languages)
            if cfg.seat_of:  # a seat mic: its neighbours' bleed is dropped
                sinks.room = self.room(cfg.seat_of)
            if self.speaker_encoder is not None and cfg.role is None and cfg.speaker is None:  # one mic, many voices
                voices = (await asyncio.to_thread(self.records.voices, cfg.hearing_id)
                          if self.records is not None and cfg.hearing_id else [])
                numbers = await self._numbers(cfg.hearing_id) if cfg.hearing_id else None
                sinks.speakers = LiveSpeakers(self.speaker_encoder, voices, self.segmenter, numbers)
                if self.records is not None and cfg.hearing_id:
                    await self._recall(sinks.speakers, self.records, cfg.hearing_id, cfg.channel)
            if cfg.hearing_id:
                sinks.on_screen = lambda event: self.hub.publish(cfg.hearing_id, event)
                emit = self._published(cfg.hearing_id, emit)
            session = StreamSession(self.engine, self.vad, self.scheduler, sid, cfg, emit, sinks,
                                    front=self.front_ends(cfg.courtroom))
        except BaseException:
            self.scheduler.release(sid)
            self._unseat(cfg)
            raise
        if cfg.hearing_id:
            self.sources.setdefault(cfg.hearing_id, {})[session] = own
            self.hub.publish(cfg.hearing_id, channel_event(session, connected=True))
        return session

    def _seat(self, cfg: SessionConfig, mapped: set[int] | None = None) -> None:
        """The source's channel in its hearing, held until it leaves: two sources on one channel
        wrote one archive segment and each replayed the other's audio. A channel its protocol names
        must be free (``channel_busy``: a recorder coming back while its old connection is still
        open tries again); a protocol without channels (FunASR's, Realtime) takes the lowest free one
        that the hearing's channel map does not give a seat (``mapped``): a seat's recorder starting
        after a courtroom PC is not refused its channel."""
        assert cfg.hearing_id is not None
        held = self.seats.setdefault(cfg.hearing_id, {})
        taken = set(held) | {s["channel"] for s in (self.peers.sources(cfg.hearing_id) if self.peers else [])}
        if cfg.channel == ANY_CHANNEL:
            avoid = taken | (mapped or set())
            cfg.channel = min(set(range(len(avoid) + 1)) - avoid)
        elif cfg.channel in taken:
            raise StreamError(ErrorCode.CHANNEL_BUSY, f"channel {cfg.channel} of hearing {cfg.hearing_id} has a "
                              "source already: give this one another channel, or try again when that one ends",
                              fatal=True)
        held[cfg.channel] = cfg

    def _mapped(self, hearing_id: str) -> dict[int, Role] | None:
        """The seats the hearing's channel map gives channels (none for a hearing not created yet;
        None: the store could not be read)."""
        try:
            return self.records.channel_roles(hearing_id) if self.records is not None else {}
        except NotFound:  # a hearing its first source creates: no map yet
            return {}
        except Exception as err:  # noqa: BLE001 - the store away: the lowest free (its join says why)
            log.warning("channel map not read: a source without a channel takes the lowest free",
                        hearing=hearing_id, error=repr(err))
            return None

    @staticmethod
    def _mapped_seat(cfg: SessionConfig, mapped: dict[int, Role] | None) -> Role:
        """The role of a seat mic that names none: its channel's in the map, or it is refused (all
        voices on it under no seat, no bleed check, would be recorded once per seat)."""
        if mapped is None:
            raise StreamError(ErrorCode.STORE_UNAVAILABLE, "the hearing's channel map cannot be read right now; "
                              "the seat microphone should reconnect in a few seconds", fatal=True)
        if cfg.channel not in mapped:
            raise StreamError(ErrorCode.NO_SEAT, f"channel {cfg.channel} is a seat microphone, but the hearing's "
                              "channel map gives it no seat: map it (排期: 通道 → 角色) or name its role", fatal=True)
        return mapped[cfg.channel]

    def _unseat(self, cfg: SessionConfig) -> None:
        """The source's channel given back, if it still holds it (never another source's)."""
        held = self.seats.get(cfg.hearing_id or "", {})
        if held.get(cfg.channel) is cfg:
            del held[cfg.channel]
            if not held:
                self.seats.pop(cfg.hearing_id or "", None)

    async def _numbers(self, hearing_id: str) -> VoiceNumbers:
        """The hearing's voice numbers here, after every number its record already holds (another
        gateway's sources may have numbered voices since this one last did)."""
        taken = await asyncio.to_thread(self.records.voices_numbered, hearing_id) if self.records else 0
        numbers = self.numbers.setdefault(hearing_id, VoiceNumbers(taken))
        numbers.taken(taken)
        return numbers

    def _published(self, hearing_id: str, emit: Callable[[Event], Awaitable[None]]) -> Callable[[Event], Awaitable[None]]:
        """A source's events reach its hearing's screens (and captions) here, once, whatever protocol
        carries the source: an adapter only translates them for its own client."""
        async def both(event: Event) -> None:
            self.hub.publish(hearing_id, event)
            await emit(event)
        return both

    async def _recall(self, speakers: LiveSpeakers, records: RecordStore, hearing_id: str, channel: int) -> None:
        """A mixed source rejoining its hearing: the voices its channel heard so far, from the archive.
        A failure is logged, and the source starts as a new one would (new voices get new numbers)."""
        root = self.archive

        def recall() -> None:
            heard = records.heard_voices(hearing_id, channel)
            if heard and root is not None:
                speakers.recall(heard, lambda a, b: archive.read(root, hearing_id, channel, a, b))
        try:
            await asyncio.to_thread(recall)
        except Exception as err:  # noqa: BLE001 - the hearing's audio still comes in
            log.error("voices heard before the reconnect not recalled", hearing=hearing_id, channel=channel,
                      error=repr(err))

    async def _join_record(self, records: RecordStore, hearing_id: str, cfg: SessionConfig, sinks: Sinks) -> list[str]:
        """Join the hearing in the store (its utterances go there, its audio to the archive); returns its
        vocabulary (hotwords, parties, names, 案由)."""
        try:
            opened = await asyncio.to_thread(records.join_live, hearing_id, actor=f"channel {cfg.channel}",
                                             pipeline=self.pipeline, court=cfg.court, courtroom=cfg.courtroom)
        except Locked as err:
            raise StreamError(ErrorCode.HEARING_CLOSED, str(err), fatal=True) from None
        except Exception as err:
            if not unavailable(err):
                raise
            raise StreamError(ErrorCode.STORE_UNAVAILABLE, "the record store cannot be reached right now; the source "
                              "should reconnect in a few seconds", fatal=True) from None
        if opened is None:  # this source opened the hearing: its screens show it running
            self.hub.publish(hearing_id, Status(hearing_id=hearing_id, status="open"))
        else:  # joining a hearing that is already running: continue its timeline
            cfg.offset_ms = await asyncio.to_thread(self._rejoin_ms, records, hearing_id, cfg)

        writer: FinalWriter = self.spool or records  # the spool waits on disk when the store is away

        async def store_final(u: Utterance, voice: str | None) -> Written:
            return await asyncio.to_thread(writer.machine_final, hearing_id, u, voice=voice)

        async def store_relabel(uid: str, label: Label) -> Written:
            return await asyncio.to_thread(writer.relabel, hearing_id, uid, speaker=label.speaker, role=label.role,
                                    participant=label.participant, voice=label.voice)
        sinks.on_final, sinks.on_relabel = store_final, store_relabel
        if self.archive is not None:
            sinks.recorder = ChannelRecorder(self.archive, hearing_id, cfg.channel, cfg.offset_ms)
        return await asyncio.to_thread(records.vocabulary, hearing_id)

    def _rejoin_ms(self, records: RecordStore, hearing_id: str, cfg: SessionConfig) -> int:
        """Where a source joining a running hearing starts: now in hearing time, never inside what
        its channel's archive holds; one coming back with what it recorded while away
        (``resume_ms``) from where that was said, but neither before the archive's end nor after now."""
        now = records.now_ms(hearing_id)
        root = self.archive
        held = archive.recorded_ms(root, hearing_id, cfg.channel) if root is not None else 0
        latest = max(now, held)
        earliest = max(held, now - RESUME_MS)  # no further back than a source keeps audio to resend
        return latest if cfg.resume_ms is None else min(max(cfg.resume_ms, earliest), latest)

    async def leave(self, session: StreamSession | None) -> None:
        """The source went away: its last utterance finished and stored, its slot and seat given back."""
        if session is None:
            return
        try:
            await session.finish()
        finally:
            self.scheduler.release(session.sid)
            hid = session.cfg.hearing_id
            self._unseat(session.cfg)
            running = self.sources.get(hid) if hid is not None else None
            if hid is not None and running is not None and running.pop(session, None) is not None:
                self.hub.publish(hid, channel_event(session, connected=False))
                if not running:  # a hearing without sources keeps no entry (its voice numbers stay: one
                    self.sources.pop(hid, None)  # joining meanwhile may hold them already)
            if hid is not None and session.sinks.room is not None and session.sinks.room.remove(session.cfg.channel):
                self.rooms.pop(hid, None)

    def publish(self, hearing_id: str | None, event: Event) -> None:
        """To the hearing's screens (and the other gateways'): an utterance, a change, a status."""
        self.hub.publish(hearing_id, event)


class PcmInput:
    """Turns binary frames into 16 kHz float32, resampling a continuous stream when needed. The
    frames are one byte stream: a frame that ends inside a sample (FunASR's client cuts 44.1 kHz
    and 11.025 kHz audio into odd-sized frames) leaves its last byte for the next one."""

    def __init__(self, rate: int):
        rate = sample_rate(rate)
        self._rs = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32") if rate != SAMPLE_RATE else None
        self._odd = b""

    def convert(self, data: bytes) -> np.ndarray:
        if len(data) > MAX_FRAME_BYTES:
            raise StreamError(ErrorCode.FRAME_TOO_LARGE, f"audio frame of {len(data)} bytes exceeds "
                              f"{MAX_FRAME_BYTES}: send at most {MAX_FRAME_BYTES // 32_000} s of audio per frame")
        data = self._odd + data
        cut = len(data) - len(data) % 2
        self._odd = data[cut:]
        x = pcm16_to_float(data[:cut])
        return x if self._rs is None else self._rs.resample_chunk(x)


def channel_event(session: StreamSession, *, connected: bool) -> Channel:
    """A source of the hearing came or went: the clerk's channel panel shows 已连接/已断开."""
    return Channel(hearing_id=session.cfg.hearing_id, channel=session.cfg.channel, speaker=session.speaker,
                   connected=connected)


