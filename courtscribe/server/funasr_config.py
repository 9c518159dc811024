"""A FunASR client's config message, and the shape of every reply it reads (server/funasr_socket.py)."""
from __future__ import annotations

from ..asr.hotwords import HotwordError, parse_weighted
from ..audio import SAMPLE_RATE
from ..streaming.protocol import SAMPLE_RATES, StreamError


def parse_hotwords(value) -> tuple[tuple[str, ...], str | None]:
    """FunASR sends hotwords as a JSON string ``{"word": weight}`` (or space-separated words).
    Returns the usable words and, when some entries were refused, why."""
    try:
        return tuple(parse_weighted(value)), None
    except HotwordError as err:
        return tuple(err.usable), str(err)


def reply(cfg: "Config | None", *, text: str = "", is_final: bool = False, mode: str | None = None, **extra) -> dict:
    """One message in the shape FunASR clients read (``extra``: our ``warning``/``error``/``code``);
    in 2pass a frame that is not the file's last is ``2pass-online`` (FunASR's Python client takes any
    other mode for a sentence's final text and clears what it showed of the sentence so far)."""
    default = "2pass" if cfg is None else cfg.result_mode if is_final or cfg.mode != "2pass" else "2pass-online"
    return {"mode": mode or default, "wav_name": cfg.wav_name if cfg else "", "text": text,
            "is_final": is_final, "timestamp": "[]", "stamp_sents": [], **extra}


class Refused(StreamError):
    """A file refused at its config (a mode or PCM rate not served): said, its audio dropped, and its
    acknowledgement says why; the socket goes on with the next file, as FunASR's server does."""

    def __init__(self, cfg: "Config", code: str, message: str):
        super().__init__(code, message)
        self.names = {"mode": str(cfg.mode)[:40], "wav_name": cfg.wav_name}


class Config:
    """A file's first message. A ``wav_format`` other than PCM is a whole file (FunASR's C++ offline
    client sends its files so, with no ``mode``; its Python client an mp3 in 2pass): decoded and
    answered once it is all in, in the mode's reply shape. PCM with no ``mode`` is 2pass, as FunASR's
    own servers take it: a recorder's live audio goes into its hearing. Only FunASR's C++ offline
    client sends PCM so (a ``.pcm`` file), and it closes at the first message after its last frame:
    such a file is answered ``once``, all its text in one reply at its end, in 2pass's final shape
    (``2pass-offline``: funasr-client, which sends no mode either, keeps only those; the C++ client
    reads any)."""

    def __init__(self, data: dict, before: "Config | None" = None):
        """``before``: the connection's last file's config, whose hotwords stand when this one names
        none (FunASR's servers keep them for the connection: its C++ client sends them once)."""
        self.wav_format = str(data.get("wav_format", "pcm")).lower()
        asked = data.get("mode") or None
        self.mode = asked or ("2pass" if self.wav_format == "pcm" else "offline")
        self.wav_name = str(data.get("wav_name", "microphone"))
        if self.mode not in ("online", "offline", "2pass"):
            raise Refused(self, "bad_message", f"mode must be online, offline or 2pass, not {self.mode!r:.40}")
        self.whole = self.mode == "offline" or self.wav_format != "pcm"
        # offline PCM: a file sent as fast as it goes (answered whole), or a microphone (FunASR's page,
        # its C++ 2pass client) whose audio comes as it is spoken: recorded live, answered at each pause
        self.paceable = self.mode == "offline" and self.wav_format == "pcm"
        self.once = asked is None and not self.whole
        # no mode: FunASR's C++ offline client, which takes the first message after a file's last
        # frame as its answer: what the server has to say of the file rides in the answer (``notes``)
        self.answer_only = asked is None
        self.notes: list[str] = []
        self.result_mode = {"2pass": "2pass-offline"}.get(self.mode, self.mode)
        try:
            self.audio_fs = int(data.get("audio_fs", SAMPLE_RATE) or SAMPLE_RATE)
        except (TypeError, ValueError, OverflowError):
            self.audio_fs = 0
        if self.wav_format != "pcm":  # a file in a container says its own rate (FunASR's page sends it too)
            self.audio_fs = SAMPLE_RATE
        elif self.audio_fs not in SAMPLE_RATES:
            raise Refused(self, "bad_sample_rate", f"audio_fs {data.get('audio_fs')!r:.20} is not supported for PCM; "
                          f"use one of {SAMPLE_RATES}")
        self.hotwords, self.hotword_problem = parse_hotwords(data.get("hotwords"))
        if "hotwords" not in data and before is not None:
            self.hotwords, self.hotword_problem = before.hotwords, None
        self.itn = data.get("itn") is not False  # numbers as spoken only when the client says so
