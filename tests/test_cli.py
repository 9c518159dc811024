"""The `courtscribe` command as a user runs it: a real subprocess, real files."""
import json
import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def run(*args, timeout=300, cwd=None, **env_extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **env_extra}
    return subprocess.run([sys.executable, "-m", "courtscribe", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def test_transcribe_market_clip_to_json(data_dir, tmp_path):
    out = tmp_path / "market.json"
    t = time.perf_counter()
    proc = run("transcribe", str(data_dir / "zh-smoke" / "market_25s.wav"), "--format", "json", "-o", str(out))
    wall = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr
    assert "transcription" in proc.stderr and "100%" in proc.stderr  # the progress bar
    record = json.loads(out.read_text())
    utts = record["utterances"]
    assert utts and record["source"]["duration_ms"] == 25008
    assert set(utts[0]) >= {"id", "start_ms", "end_ms", "channel", "speaker", "role", "text", "tokens"}
    assert all(0 <= u["start_ms"] <= u["end_ms"] <= 25008 and u["text"] for u in utts)
    assert [u["start_ms"] for u in utts] == sorted(u["start_ms"] for u in utts)
    assert all(a["end_ms"] <= b["start_ms"] for a, b in zip(utts, utts[1:]) if a["speaker"] == b["speaker"])
    assert all(set(t) == {"text", "start_ms", "end_ms", "prob"} for u in utts for t in u["tokens"])
    print(f"\nmarket_25s.wav: {wall:.1f} s wall for 25.0 s of audio (RTF {wall / 25.0:.2f}, start-up included)")


def test_stdout_carries_only_the_record(data_dir):
    proc = run("transcribe", str(data_dir / "zh-smoke" / "news_kfc.wav"), "--format", "srt", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("1\n00:00:")  # nothing printed before the SRT (e.g. FunASR banners)


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"PK\x03\x04 this is a zip, not audio" * 20, "not a readable audio file"),
])
def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    proc = run("transcribe", str(path))
    assert proc.returncode == 2
    assert f"error: {path}: " in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_bad_options(data_dir):
    clip = str(data_dir / "zh-smoke" / "news_kfc.wav")
    assert "--speakers takes 'auto' or a positive number" in run("transcribe", clip, "--speakers", "0").stderr
    assert "unknown role '法警'" in run("transcribe", clip, "--channel-role", "0=法警").stderr
    assert "docx output is binary" in run("transcribe", clip, "-f", "docx").stderr
    assert "unknown format 'odt'" in run("transcribe", clip, "-f", "odt").stderr
    assert "--voice takes NAME=FILE" in run("transcribe", clip, "--voice", "judge.wav").stderr
    assert "说话人N is the machine's" in run("transcribe", clip, "--voice", f"说话人1={clip}").stderr


def test_transcribe_names_the_voices_the_court_has_samples_of(data_dir, tmp_path):
    """A recording of a judge then a witness, with a sample of each (here: stretches of the very
    voices): the record prints them by name, not 说话人N."""
    import json

    import numpy as np
    import soundfile as sf

    from courtscribe.audio import decode

    judge = decode(data_dir / "zh-smoke" / "justice.wav").channel(0)
    witness = decode(data_dir / "zh-smoke" / "custody.wav").channel(0)
    sf.write(tmp_path / "hearing.wav", np.concatenate([judge, np.zeros(16000, np.float32), witness]), 16000)
    sf.write(tmp_path / "judge.wav", judge[:6 * 16000], 16000)
    sf.write(tmp_path / "witness.wav", witness, 16000)
    out = tmp_path / "hearing.json"
    proc = run("transcribe", str(tmp_path / "hearing.wav"), "-o", str(out), "--quiet",
               "--voice", f"审判长={tmp_path / 'judge.wav'}", "--voice", f"证人={tmp_path / 'witness.wav'}")
    assert proc.returncode == 0, proc.stderr
    lines = json.loads(out.read_text())["utterances"]
    assert lines[0]["speaker"] == "审判长" and lines[-1]["speaker"] == "证人", [(u["speaker"], u["text"]) for u in lines]


def test_models_list_and_verify():
    listing = run("models", "list")
    assert listing.returncode == 0
    assert "whisper-base" in listing.stdout and "available" in listing.stdout
    assert "paraformer-zh-streaming" in listing.stdout and "missing" in listing.stdout
    verify = run("models", "verify", "--embedded")
    assert verify.returncode == 0, verify.stderr
    # whisper-base, fsmn-vad, campplus, resemblyzer, pyannote-segmentation-3.0; the 笔录 font
    assert verify.stdout.count("ok ") == 6 and "bilu-font" in verify.stdout and "pyannote-segmentation-3.0" in verify.stdout


def test_verify_reports_corruption(tmp_path):
    env_dir = tmp_path / "cache"
    env = {**os.environ, "COURTSCRIBE_MODEL_CACHE_DIR": str(env_dir)}
    ok = subprocess.run([sys.executable, "-m", "courtscribe", "models", "verify", "whisper-base"],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    with open(env_dir / "whisper-base" / "config.json", "a") as f:
        f.write(" ")
    bad = subprocess.run([sys.executable, "-m", "courtscribe", "models", "verify", "whisper-base"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 1
    assert "FAILED" in bad.stderr and "config.json: corrupt" in bad.stderr


def test_transcribe_into_the_record_store_then_records_commands(data_dir, tmp_path):
    env = {"COURTSCRIBE_DATA_DIR": str(tmp_path / "data")}
    # the clerk scheduled the hearing beforehand; the recording joins it
    made = run("records", "create", "h-cli", "--by", "书记员", "--case-number", "（2026）京0105民初9号", **env)
    assert made.returncode == 0, made.stderr
    proc = run("transcribe", str(data_dir / "zh-smoke" / "news_kfc.wav"), "--store", "h-cli", "--quiet", "-f", "txt",
               **env)
    assert proc.returncode == 0, proc.stderr
    assert "stored as hearing h-cli" in proc.stderr
    assert "（2026）京0105民初9号" in run("records", "export", "h-cli", "-f", "json", **env).stdout
    assert run("records", "close", "h-cli", "--by", "书记员", **env).returncode == 0
    read = run("records", "read-back", "h-cli", **env)
    assert "肯德基" in read.stdout and "--read-back" in read.stderr
    assert read.stdout.startswith("庭 审 笔 录（待签名稿）") and "案号：（2026）京0105民初9号" in read.stdout
    digest = read.stderr.split("--read-back ")[1].split()[0]
    stale = run("records", "sign", "h-cli", "--by", "王法官", "--role", "审判长", "--read-back", "0" * 64, **env)
    assert stale.returncode == 2 and "read it back again" in stale.stderr
    signed = run("records", "sign", "h-cli", "--by", "王法官", "--role", "审判长", "--read-back", digest, **env)
    assert signed.returncode == 0 and signed.stdout.strip() == digest
    audit = [json.loads(line) for line in (tmp_path / "data" / "audit" / "audit.jsonl").read_text().splitlines()]
    anchor = [e for e in audit if e["action"] == "ledger_anchor" and e["hearing"] == "h-cli"]
    assert anchor and anchor[0]["detail"]["digest"] == signed.stdout.strip()  # as a signature on the screen
    assert "chain intact" in run("records", "verify", "h-cli", **env).stdout
    assert "肯德基" in run("records", "export", "h-cli", "-f", "txt", **env).stdout
    package = tmp_path / "h-cli.zip"
    assert run("records", "export", "h-cli", "-f", "package", "-o", str(package), **env).returncode == 0
    assert "every file matches" in run("records", "verify-package", str(package), **env).stdout
    first = json.loads(run("records", "export", "h-cli", "-f", "json", **env).stdout)["utterances"][0]["id"]
    named = run("records", "export", "h-cli", "-f", "ofd", **env, cwd=tmp_path)  # named by its 案号
    ofd = tmp_path / "（2026）京0105民初9号.ofd"
    assert named.returncode == 0 and named.stderr.strip() == ofd.name and ofd.read_bytes()[:2] == b"PK"
    filed = ofd.read_bytes()  # another hearing of the case, or this one again: the filed one stays
    again = run("records", "export", "h-cli", "-f", "ofd", **env, cwd=tmp_path)
    assert again.stderr.strip() == "（2026）京0105民初9号 (2).ofd" and ofd.read_bytes() == filed
    refused = run("records", "edit", "h-cli", first, "改", "--by", "x", **env)
    assert refused.returncode == 2 and "signed" in refused.stderr
    listing = run("records", "list", **env).stdout
    assert listing.startswith("h-cli\tsigned")
    # the public version after sign-off: the clerk's choices are ledger entries, the record stays
    assert run("records", "protect", "h-cli", "张三", "--by", "书记员", "--reason", "未成年人", **env).returncode == 0
    assert run("records", "redact", "h-cli", "肯德基", "--by", "书记员", **env).returncode == 0
    public = run("records", "export", "h-cli", "-f", "txt", "--public", **env).stdout
    assert "公开版" in public and "肯德基" not in public and "×××" in public
    assert "肯德基" in run("records", "redactions", "h-cli", **env).stdout  # the log, for the clerk
    assert "肯德基" in run("records", "export", "h-cli", "-f", "txt", **env).stdout
    no_package = run("records", "export", "h-cli", "-f", "package", "--public", **env)
    assert no_package.returncode == 2 and "audio" in no_package.stderr
    assert "chain intact" in run("records", "verify", "h-cli", **env).stdout


def test_streaming_a_missing_or_non_audio_file_is_one_clear_line(tmp_path):
    (tmp_path / "notes.txt").write_text("not audio")
    for path, said in ((tmp_path / "missing.wav", "no such file"), (tmp_path / "notes.txt", "not a readable audio file")):
        out = run("stream", str(path), "--url", "ws://127.0.0.1:9/v1/stream")
        assert out.returncode != 0 and said in out.stderr and "Traceback" not in out.stderr, out.stderr



# -- operations: settings, start-up, a stream cut short ------------------------------------------
def test_port_is_checked_on_the_command_line_and_in_the_environment(tmp_path):
    from pydantic import ValidationError

    from courtscribe.config import Settings

    for port in (0, 65536, 99999):
        with pytest.raises(ValidationError):
            Settings(port=port)
    assert Settings(port=65535).port == 65535
    data = str(tmp_path / "data")
    flag = run("serve", "--port", "99999", COURTSCRIBE_DATA_DIR=data)
    assert flag.returncode == 2 and "--port" in flag.stderr and "Traceback" not in flag.stderr
    env = run("serve", COURTSCRIBE_PORT="99999", COURTSCRIBE_DATA_DIR=data)
    line = one_line_error(env)
    assert line.startswith("error: COURTSCRIBE_PORT='99999'") and "65535" in line


ALEMBIC = ("Running upgrade", "Context impl", "Will assume")  # its INFO lines on a new database


def one_line_error(proc) -> str:
    """A refused start as court IT must see it: exit 2, one line on stderr, no traceback."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and 'File "' not in proc.stderr, proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if not x.startswith(ALEMBIC)]
    assert line.startswith("error: "), line
    return line


@pytest.mark.parametrize("env,said", [
    ({"COURTSCRIBE_PORT": "80o0"},
     "COURTSCRIBE_PORT='80o0' is not accepted: input should be a valid integer"),
    ({"COURTSCRIBE_LANGUAGES": "zh,en"},
     """COURTSCRIBE_LANGUAGES='zh,en' is not JSON: give a JSON list, e.g. ["zh", "en"]"""),
    ({"COURTSCRIBE_LOG_LEVEL": "debugg"},
     "COURTSCRIBE_LOG_LEVEL='DEBUGG' is not accepted: give one of DEBUG, INFO, WARNING"),
    ({"COURTSCRIBE_ENGINE": "whisperr"},
     "COURTSCRIBE_ENGINE='whisperr' is not accepted: give one of whisper, funasr"),
    ({"COURTSCRIBE_DEVICE": "gpu"},
     "COURTSCRIBE_DEVICE='gpu' is not accepted: give one of cpu, cuda"),
    ({"COURTSCRIBE_DATABASE_URL": "postgresql+psycopg://cs:s3cret@127.0.0.1:1/courtscribe"},
     "cannot open the record store postgresql+psycopg://cs:***@127.0.0.1:1/courtscribe "
     "(from COURTSCRIBE_DATABASE_URL): connection"),
    ({"COURTSCRIBE_ENGINE": "funasr", "COURTSCRIBE_MODEL_DIR": "/nonexistent"},
     "model 'paraformer-zh-streaming'"),
])
def test_a_bad_setting_stops_serve_with_one_line_naming_it(tmp_path, env, said):
    line = one_line_error(run("serve", COURTSCRIBE_DATA_DIR=str(tmp_path / "data"), **env))
    assert said in line and "s3cret" not in line


def test_an_unusable_data_folder_is_named(tmp_path):
    (tmp_path / "afile").write_text("")
    data = tmp_path / "afile" / "data"
    line = one_line_error(run("serve", COURTSCRIBE_DATA_DIR=str(data)))
    assert line.startswith(f"error: COURTSCRIBE_DATA_DIR={data} cannot be used: Not a directory")


def test_every_command_that_reads_the_settings_says_which_is_wrong(tmp_path):
    proc = run("records", "list", COURTSCRIBE_DATA_DIR=str(tmp_path), COURTSCRIBE_CORS_ORIGINS="x")
    said = "error: COURTSCRIBE_CORS_ORIGINS='x' is not JSON: give a JSON list"
    assert one_line_error(proc) == said


def test_unknown_variables_are_named_with_the_setting_meant():
    from courtscribe.config import masked_url, unknown_variables

    found = unknown_variables(["COURTSCRIBE_DATABSE_URL", "courtscribe_loglevel", "PATH",
                               "COURTSCRIBE_PORT", "COURTSCRIBE_FONT_FILE", "COURTSCRIBE_TEST_DATA",
                               "COURTSCRIBE_WIDGETS"])
    assert found == [("COURTSCRIBE_DATABSE_URL", "COURTSCRIBE_DATABASE_URL"),
                     ("COURTSCRIBE_LOGLEVEL", "COURTSCRIBE_LOG_LEVEL"),
                     ("COURTSCRIBE_WIDGETS", None)]
    assert masked_url("postgresql+psycopg://cs:s3cret@db:5432/cs?sslmode=require") == \
        "postgresql+psycopg://cs:***@db:5432/cs?sslmode=require"
    assert masked_url("postgresql://db/cs?password=s3cret&x=1") == \
        "postgresql://db/cs?password=***&x=1"


def test_serve_warns_of_a_misspelt_variable_and_says_what_it_uses(tmp_path):
    """A typo in COURTSCRIBE_DATABASE_URL once sent records to a local SQLite file unsaid."""
    from conftest import start_server

    proc, _ = start_server(tmp_path, COURTSCRIBE_DATABSE_URL="postgresql+psycopg://cs@db/cs")
    try:
        lines = (tmp_path / "server.log").read_text().splitlines()
    finally:
        proc.terminate()
        proc.wait(60)
    [typo] = [line for line in lines if "COURTSCRIBE_DATABSE_URL" in line]
    assert "not a courtscribe setting: ignored" in typo
    assert "did_you_mean=COURTSCRIBE_DATABASE_URL" in typo
    [start] = [line for line in lines if "courtscribe starts" in line]
    data = tmp_path / "data"
    for part in (f"data_dir={data}", f"records=sqlite:///{data / 'courtscribe.db'}",
                 "engine=whisper", "model=whisper-base", "font="):
        assert part in start, start


@pytest.fixture
def dying_server():
    """A WebSocket server that accepts a stream and then goes away in the way named: a crash (no
    close frame), an error close, or a clean close before the stream's end."""
    import socket
    import threading

    from websockets.sync.server import serve

    how = {}

    def handler(ws):
        ws.recv()
        how["tries"] = how.get("tries", 0) + 1
        if how["way"] == "restarted" and how["tries"] > 1:  # back, but the old connection holds the channel
            ws.send(json.dumps({"type": "error", "code": "channel_busy", "message": "…", "fatal": True}))
            ws.close()
            return
        ws.send(json.dumps({"type": "ready", "session_id": "s", "hearing_id": "h", "channel": 0, "offset_ms": 0}))
        if how["way"] == "restarted":
            ws.send(json.dumps({"type": "end", "utterances": 0, "reason": "server_restart"}))
            ws.close(1012)
        elif how["way"] == "crash":
            ws.socket.shutdown(socket.SHUT_RDWR)
        else:
            ws.close(*how["way"])

    with serve(handler, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield how, f"ws://127.0.0.1:{server.socket.getsockname()[1]}/v1/stream"
        server.shutdown()


@pytest.mark.parametrize("way,said", [
    ("crash", "was lost (no close from the server): the stream ended"),
    ((1011, "decoder failed"), "closed the stream before its end (code 1011: decoder failed)"),
    ((1000, ""), "closed the stream before its end"),
    ("restarted", "restarted: it did not take the stream back within 2 s"),
])
def test_a_stream_whose_server_goes_away_ends_in_one_line(dying_server, tmp_path, way, said):
    import numpy as np
    import soundfile as sf

    how, url = dying_server
    how["way"] = way
    sf.write(tmp_path / "a.wav", np.zeros(16000 * 3, np.float32), 16000)
    out = run("stream", str(tmp_path / "a.wav"), "--url", url, "--speed", "0", "--reconnect-s", "2", timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    last = out.stderr.splitlines()[-1].replace("\x1b[K", "")  # the partial line cleared first
    assert last.startswith("error: the ") and said in last, out.stderr
    # a lost connection or a server error is tried again (each try said) until --reconnect-s runs out;
    # a clean close is the server's answer, not tried again
    assert ("reconnecting (try 1)" in out.stderr) == (way != (1000, "")), out.stderr
    assert ("the server is restarting" in out.stderr) == (way == "restarted"), out.stderr


def test_a_microphone_stream_ended_while_the_server_is_away_saves_its_audio(dying_server, tmp_path):
    """The server crashed and does not come back within --reconnect-s: the microphone's audio it
    may not have is saved beside the recorder, and the person is told where, before the error."""
    import soundfile as sf

    how, url = dying_server
    how["way"] = "crash"
    out = run("stream", "--mic", "--device", "lavfi:sine=f=440:d=3", "--url", url, "--reconnect-s", "1",
              "--unsent-dir", str(tmp_path / "unsent"), timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    [saved] = (tmp_path / "unsent").glob("unsent-h-ch0-000000-*.wav")  # from hearing time 0: no final came
    assert f"saved in {saved}" in out.stderr and sf.info(saved).duration > 0
    assert saved.stat().st_mode & 0o777 == 0o600  # court audio: its owner's alone
    assert out.stderr.splitlines()[-1].replace("\x1b[K", "").startswith("error: the ")


def test_a_mixers_seats_whose_streams_end_record_on_into_their_files(dying_server, tmp_path):
    """A mixer's seats stream on one command; the server goes away for good while the microphones
    record on (a real-time source): each seat's file holds all it recorded, to the source's end,
    not only what it had when its stream ended."""
    import soundfile as sf

    how, url = dying_server
    how["way"] = "crash"
    device = "lavfi:aevalsrc=0.1*sin(2*PI*440*t)|0.4*sin(2*PI*660*t):s=48000:d=4,arealtime"
    out = run("stream", "--mic", "--device", device, "--seats", "2", "--url", url, "--reconnect-s", "1",
              "--unsent-dir", str(tmp_path / "unsent"), timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    for channel in (0, 1):
        [saved] = (tmp_path / "unsent").glob(f"unsent-h-ch{channel}-000000-*.wav")
        assert f"saved in {saved}; its stream has ended, its microphone records on" in out.stderr
        assert f"channel {channel}: 4 s of its audio the server may not have are in {saved}" in out.stderr
        assert sf.info(saved).frames == 4 * 16_000  # all of it, from hearing time 0 to the end
        assert saved.stat().st_mode & 0o777 == 0o600


def test_a_microphone_stream_with_nowhere_to_save_unsent_audio_is_refused_before_it_starts(tmp_path):
    (tmp_path / "a-file").write_text("")
    out = run("stream", "--mic", "--device", "lavfi:sine=f=440:d=1", "--url", "ws://127.0.0.1:9/v1/stream",
              "--unsent-dir", str(tmp_path / "a-file" / "unsent"), timeout=60)
    assert out.returncode != 0 and "--unsent-dir" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_every_command_says_what_it_does():
    import click
    import typer

    from courtscribe.cli import app

    def commands(group: click.Group, path: str):
        for name, cmd in group.commands.items():
            yield f"{path} {name}", cmd
            if isinstance(cmd, click.Group):
                yield from commands(cmd, f"{path} {name}")

    silent = [path for path, cmd in commands(typer.main.get_command(app), "courtscribe")
              if not (cmd.help or cmd.short_help or "").strip()]
    assert silent == []


def test_a_mixers_seat_channels_stream_from_one_command_each_its_seat(server, data_dir, tmp_path):
    """A courtroom PC with a mixer (a microphone per seat) streams both channels from one command:
    each channel is the seat the hearing's channel map gives it, on one clock, so the judge's bleed
    on the agent's microphone is recognised as the judge's and each sentence is recorded once."""
    import httpx
    import numpy as np
    import soundfile as sf

    from courtscribe.audio import decode

    judge = decode(data_dir / "zh-smoke" / "justice.wav").channel(0)
    agent = decode(data_dir / "zh-smoke" / "custody.wav").channel(0)
    direct = np.zeros((2, judge.size + agent.size + 16000), np.float32)
    direct[0, :judge.size] = judge
    direct[1, judge.size + 16000:] = agent
    lag = 48  # 3 ms
    mics = direct.copy()
    mics[1, lag:] += direct[0, :-lag] * 10 ** (-12 / 20)
    mics[0, lag:] += direct[1, :-lag] * 10 ** (-12 / 20)
    wav = tmp_path / "mixer.wav"
    sf.write(wav, mics.T, 16000)
    made = httpx.post(f"{server}/v1/hearings", json={"id": "h-mixer", "channels": {"0": "审判长", "1": "原告代理人"}})
    assert made.status_code == 201, made.text
    proc = run("stream", str(wav), "--seats", "2", "--hearing", "h-mixer", "--speed", "2",
               "--url", server.replace("http://", "ws://") + "/v1/stream")
    assert proc.returncode == 0, proc.stderr
    lines = httpx.get(f"{server}/v1/hearings/h-mixer").json()["utterances"]
    judges = [u for u in lines if u["channel"] == 0 and u["text"]]
    agents = [u for u in lines if u["channel"] == 1 and u["text"]]
    assert judges and agents, lines
    assert all(u["speaker"] == "审判长" and u["end_ms"] <= judge.size / 16 + 1000 for u in judges), judges
    assert all(u["speaker"] == "原告代理人" and u["start_ms"] >= judge.size / 16 - 500 for u in agents), agents
    assert "审判长" in proc.stdout and "原告代理人" in proc.stdout  # the PC's own screen shows both seats


def test_a_mixers_channels_are_placed_where_its_first_was_and_a_refused_one_stops_no_other():
    """Each channel after the first starts at the hearing time the server gave the first (one clock:
    bleed is found by waveform within 250 ms); a refused channel does not stop the others."""
    import asyncio

    from courtscribe.clients.stream_client import on_one_clock

    async def seats(refuse: int | None):
        asked = {}

        async def one(source, k, first_ms=None, on_ready=None):
            asked[k] = first_ms
            if on_ready and k != refuse:
                on_ready({"type": "ready", "offset_ms": 1234})
            if k == refuse:
                raise RuntimeError("server refused the stream: busy")
            return k
        return await on_one_clock(one, [None, None, None]), asked

    assert asyncio.run(seats(None)) == ([0, 1, 2], {0: None, 1: 1234, 2: 1234})
    got, asked = asyncio.run(seats(0))
    assert isinstance(got[0], RuntimeError) and got[1:] == [1, 2]
    assert asked == {0: None, 1: None, 2: None}  # placed by the server
    got, asked = asyncio.run(seats(2))
    assert got[:2] == [0, 1] and isinstance(got[2], RuntimeError) and asked == {0: None, 1: 1234, 2: 1234}


def test_a_mixers_channels_with_no_seat_are_refused_at_once_not_recorded_as_mixed_microphones(server, data_dir,
                                                                                           tmp_path):
    """--seats into a hearing whose channel map gives the channels no seat, and no --channel-role:
    each channel is refused (no_seat) and said with its number, the command ends at once, and the
    hearing holds no line (recorded as mixed microphones, each sentence would be there once per seat)."""
    import httpx
    import numpy as np
    import soundfile as sf

    from courtscribe.audio import decode

    clip = decode(data_dir / "zh-smoke" / "welcome.wav").channel(0)
    wav = tmp_path / "two.wav"
    sf.write(wav, np.stack([clip, 0.1 * clip]).T, 16000)
    assert httpx.post(f"{server}/v1/hearings", json={"id": "h-nomap"}).status_code == 201
    proc = run("stream", str(wav), "--seats", "2", "--hearing", "h-nomap", "--speed", "1",
               "--url", server.replace("http://", "ws://") + "/v1/stream")
    assert proc.returncode != 0 and "no_seat" in proc.stderr and "channel 0" in proc.stderr, proc.stderr
    assert httpx.get(f"{server}/v1/hearings/h-nomap").json()["utterances"] == []
