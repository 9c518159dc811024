"""Who is who in a live mixed-channel hearing, over the real server: enroll a participant's voice,
stream one microphone carrying two people, see lines labelled by name, refine at the end."""
import asyncio
import io
from urllib.parse import quote

import httpx
import numpy as np
import pytest
import soundfile as sf

from courtscribe.audio import decode
from courtscribe.clients import stream_file

pytestmark = pytest.mark.slow
CLERK = {"X-Courtscribe-User": quote("赵书记员")}


def wav(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, 16_000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_enroll_stream_and_refine(server, data_dir, tmp_path):
    api = f"{server}/v1/hearings"
    justice = decode(data_dir / "zh-smoke" / "justice.wav").channel(0)
    market = decode(data_dir / "zh-smoke" / "market_25s.wav").channel(0)
    r = httpx.post(api, headers=CLERK, json={"id": "h-bad", "channels": {"0": "审判长", "1": "法警"}})
    assert r.status_code == 422 and "法警" in r.text  # a channel map naming an unknown role
    assert httpx.post(api, headers=CLERK, json={"id": "h-spk", "parties": ["张三", "李四"]}).status_code == 201
    for role, name in [("plaintiff", "张三"), ("defendant", "李四")]:
        assert httpx.post(f"{api}/h-spk/participants", headers=CLERK, json={"role": role, "name": name}).status_code == 201

    # bad enrollment audio: clear errors, nothing stored, the hearing goes on
    r = httpx.put(f"{api}/h-spk/participants/{quote('张三')}/voice", headers=CLERK, content=wav(justice[:16_000]))
    assert r.status_code == 422 and "1500 ms" in r.json()["detail"]["message"]
    r = httpx.put(f"{api}/h-spk/participants/{quote('张三')}/voice", headers=CLERK, content=wav(np.zeros(80_000, np.float32)))
    assert r.status_code == 422 and "silence" in r.json()["detail"]["message"]
    r = httpx.put(f"{api}/h-spk/participants/{quote('张三')}/voice", headers=CLERK, content=b"not audio at all")
    assert r.status_code == 422
    r = httpx.put(f"{api}/h-spk/participants/{quote('王五')}/voice", headers=CLERK, content=wav(justice[:96_000]))
    assert r.status_code == 404

    r = httpx.put(f"{api}/h-spk/participants/{quote('张三')}/voice", headers=CLERK, content=wav(justice[:96_000]))
    assert r.status_code == 200 and r.json()["enrolled"]

    # one microphone: an unknown voice (market), then 张三 (justice), then the unknown voice again
    mixed = np.concatenate([market[:128_000], np.zeros(24_000, np.float32), justice[96_000:],
                            np.zeros(24_000, np.float32), market[160_000:320_000]])
    sf.write(tmp_path / "mixed.wav", mixed, 16_000)
    result = asyncio.run(stream_file(server.replace("http", "ws") + "/v1/stream", tmp_path / "mixed.wav", speed=0,
                                     hearing_id="h-spk"))
    lines = [f["utterance"] for f in result.finals]
    justice_at = (128_000 + 24_000) / 16, (128_000 + 24_000 + justice.size - 96_000) / 16
    for u in lines:
        mid = (u["start_ms"] + u["end_ms"]) / 2
        if justice_at[0] < mid < justice_at[1]:
            assert (u["speaker"], u["role"], u["participant"]) == ("张三", "plaintiff", "张三"), u
        else:
            assert u["speaker"] == "说话人1" and u["participant"] is None, u
    record = httpx.get(f"{api}/h-spk").json()
    shown = {u["id"]: u["speaker"] for u in lines}  # finals, then any speaker updates, as a screen applies them
    shown.update({e["utterance_id"]: e["speaker"] for e in result.events if e["type"] == "speaker_update"})
    assert {u["id"]: u["speaker"] for u in record["utterances"]} == shown

    # refinement at the end: proposals only, then applied; a line the clerk labelled never moves
    first = min(lines, key=lambda u: u["start_ms"])["id"]
    assert httpx.patch(f"{api}/h-spk/utterances/{first}", headers=CLERK,
                       json={"speaker": "李四", "role": "defendant", "participant": "李四"}).status_code == 200
    r = httpx.post(f"{api}/h-spk/speakers/refine", headers=CLERK, timeout=120)  # re-embeds every line: seconds on a loaded CPU
    assert r.status_code == 200 and r.json()["applied"] is False
    assert all(p["utterance_id"] != first for p in r.json()["proposals"])
    r = httpx.post(f"{api}/h-spk/speakers/refine", headers=CLERK, params={"apply": "true"}, timeout=120)
    after = {u["id"]: u for u in httpx.get(f"{api}/h-spk").json()["utterances"]}
    assert after[first]["speaker"] == "李四"
    for p in r.json()["proposals"]:
        assert after[p["utterance_id"]]["speaker"] == p["after"]
    assert httpx.get(f"{api}/h-spk/verify").json()["ok"]
