"""The record store over HTTP, fed by a real live stream: what a clerk's screen and the e-case
file system do against `make serve`."""
import asyncio
import io
import json
import zipfile
from urllib.parse import quote

import docx
import httpx
import pytest
import websockets

from courtscribe.clients import stream_file
from courtscribe.records import package

pytestmark = pytest.mark.slow
CLERK = {"X-Courtscribe-User": quote("赵书记员")}


def ws(server, path):
    return server.replace("http://", "ws://") + path


def test_a_live_hearing_is_stored_corrected_signed_and_exported(server, data_dir, tmp_path):
    api = f"{server}/v1/hearings"
    r = httpx.post(api, headers=CLERK, json={"id": "h-api", "case_number": "(2026)京0105民初77号", "cause": "合同纠纷",
                                              "court": "北京市朝阳区人民法院", "courtroom": "第一法庭", "title": "甲诉乙",
                                              "channels": {"0": "presiding_judge"}})
    assert r.status_code == 201, r.text
    assert httpx.post(api, headers=CLERK, json={"id": "h-api"}).json()["detail"]["code"] == "conflict"
    for role, name in [("presiding_judge", "王法官"), ("clerk", "赵书记员")]:
        assert httpx.post(f"{api}/h-api/participants", headers=CLERK, json={"role": role, "name": name}).status_code == 201

    result = asyncio.run(stream_file(ws(server, "/v1/stream"), data_dir / "zh-smoke" / "justice.wav", speed=0,
                                     hearing_id="h-api", role="审判长"))
    finals = [f["utterance"] for f in result.finals]
    record = httpx.get(f"{api}/h-api").json()
    assert [u["id"] for u in record["utterances"]] == [u["id"] for u in finals]  # stored before announced
    assert [u["text"] for u in record["utterances"]] == [u["text"] for u in finals]
    assert record["hearing"]["started_at"] and all(u["status"] == "final" for u in record["utterances"])

    first, second = finals[0]["id"], finals[1]["id"]
    r = httpx.patch(f"{api}/h-api/utterances/{first}", headers=CLERK, json={"text": "正是因为存在绝对正义，", "reason": "标点"})
    assert r.status_code == 200 and r.json()["status"] == "edited" and r.json()["machine_text"] == finals[0]["text"]
    r = httpx.patch(f"{api}/h-api/utterances/{second}", headers=CLERK,
                    json={"speaker": "审判长", "role": "presiding_judge", "participant": "王法官"})
    assert r.json()["speaker"] == "审判长"
    assert httpx.post(f"{api}/h-api/utterances/{finals[-1]['id']}/confirm", headers=CLERK).json()["status"] == "confirmed"
    assert httpx.post(f"{api}/h-api/interruptions", headers=CLERK,
                      json={"kind": "paused", "at_ms": 12000, "reason": "休庭"}).status_code == 201
    corrections = httpx.get(f"{api}/h-api/corrections").json()["corrections"]
    assert [(c["field"], c["by"]) for c in corrections] == [("text", "赵书记员"), ("speaker", "赵书记员")]

    assert httpx.post(f"{api}/h-api/signatures", json={"by": "王法官", "role": "审判长"}).status_code == 409  # open
    assert httpx.post(f"{api}/h-api/close", headers=CLERK).json()["status"] == "closed"
    signed = httpx.post(f"{api}/h-api/signatures", json={"by": "王法官", "role": "presiding_judge"})
    assert signed.status_code == 201 and len(signed.json()["digest"]) == 64
    late = httpx.patch(f"{api}/h-api/utterances/{first}", headers=CLERK, json={"text": "改"})
    assert late.status_code == 409 and late.json()["detail"]["code"] == "locked"
    assert httpx.post(f"{api}/h-api/correction-requests", headers={"X-Courtscribe-User": quote("乙方律师")},
                      json={"text": "补充", "reason": "遗漏", "utterance_id": first}).status_code == 201
    assert httpx.get(f"{api}/h-api/verify").json()["ok"] is True

    d = docx.Document(io.BytesIO(httpx.get(f"{api}/h-api/export", params={"format": "docx"}).content))
    body = "\n".join(p.text for p in d.paragraphs)
    assert "正是因为存在绝对正义，（已更正）" in body and "补正申请" in body
    pdf = httpx.get(f"{api}/h-api/export", params={"format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    zpath = tmp_path / "h-api.zip"
    zpath.write_bytes(httpx.get(f"{api}/h-api/export", params={"format": "package"}).content)
    assert package.verify(zpath) == []

    async def into_closed():
        async with websockets.connect(ws(server, "/v1/stream")) as sock:
            await sock.send(json.dumps({"type": "start", "sample_rate": 16000, "hearing_id": "h-api"}))
            return json.loads(await sock.recv())
    refused = asyncio.run(into_closed())
    assert refused["type"] == "error" and refused["code"] == "hearing_closed"
    assert httpx.get(f"{api}/nope").json()["detail"]["code"] == "not_found"
    assert "h-api" in [h["id"] for h in httpx.get(api).json()["data"]]


def test_hearing_ids_may_be_chinese_but_never_leave_the_archive(server):
    api = f"{server}/v1/hearings"
    hid = "（2026）京0105民初77号-1".replace("（", "").replace("）", "")  # word characters and '-'
    assert httpx.post(api, headers=CLERK, json={"id": hid, "title": "甲诉乙"}).status_code == 201
    r = httpx.get(f"{api}/{hid}/export", headers=CLERK, params={"format": "json"})
    assert r.status_code == 200
    assert r.headers["content-disposition"].endswith("filename*=UTF-8''" + quote(f"{hid}.json"))
    for bad in ("..", "../x", ".hidden", "a/b", "x" * 65, "a b"):
        assert httpx.post(api, headers=CLERK, json={"id": bad}).status_code == 422, bad


def test_names_longer_than_the_store_keeps_are_refused_at_the_door(server):
    """PostgreSQL keeps a speaker's label in 64 characters and a name in 128: a longer one taken by
    the API made every later final of that voice fail to store."""
    api = f"{server}/v1/hearings"
    assert httpx.post(api, headers=CLERK, json={"id": "h-too-long", "title": "甲诉乙"}).status_code == 201
    line = {"text": "好。", "channel": 0, "start_ms": 0, "end_ms": 500}
    r = httpx.patch(f"{api}/h-too-long/utterances/u1", headers=CLERK, json={**line, "speaker": "长" * 65})
    assert r.status_code == 422
    r = httpx.post(f"{api}/h-too-long/participants", headers=CLERK, json={"role": "原告", "name": "名" * 129})
    assert r.status_code == 422
    r = httpx.get(api, headers={"X-Courtscribe-User": quote("书" * 129)})
    assert r.status_code == 400 and r.json()["detail"]["code"] == "bad_user"
    assert httpx.patch(f"{api}/h-too-long/utterances/u1", headers=CLERK, json={**line, "speaker": "长" * 64}).is_success


def test_the_speaker_sent_with_a_partials_correction_places_it_and_is_no_persons_choice(server):
    """Her correction of a line still being spoken carries the machine's label to place the line:
    that is not her choice of speaker, so the diarizer's final word on it still counts."""
    api = f"{server}/v1/hearings"
    assert httpx.post(api, headers=CLERK, json={"id": "h-place", "title": "甲诉乙"}).status_code == 201
    placed = {"text": "我不同意", "channel": 1, "start_ms": 1000, "end_ms": 2000, "speaker": "说话人2",
              "role": "defendant"}
    line = httpx.patch(f"{api}/h-place/utterances/u1", headers=CLERK, json=placed).json()
    assert (line["speaker"], line["role"]) == ("说话人2", "defendant")
    kinds = [c["field"] for c in httpx.get(f"{api}/h-place/corrections", headers=CLERK).json()["corrections"]]
    assert kinds == ["text"]  # no speaker change of hers
    chosen = httpx.patch(f"{api}/h-place/utterances/u1", headers=CLERK, json={"speaker": "原告", "role": "plaintiff"})
    assert chosen.json()["role"] == "plaintiff"
    kinds = [c["field"] for c in httpx.get(f"{api}/h-place/corrections", headers=CLERK).json()["corrections"]]
    assert kinds == ["text", "speaker"]
    # the same label sent alone is still her choice: she confirms the machine's guess
    httpx.patch(f"{api}/h-place/utterances/u1", headers=CLERK, json={"speaker": "原告", "role": "plaintiff"})
    kinds = [c["field"] for c in httpx.get(f"{api}/h-place/corrections", headers=CLERK).json()["corrections"]]
    assert kinds == ["text", "speaker", "speaker"]


def test_a_clerk_adds_hotwords_mid_hearing_and_the_running_source_takes_them(server, data_dir):
    api = f"{server}/v1/hearings"
    assert httpx.post(api, headers=CLERK, json={"id": "h-hot", "parties": ["张三"], "case_number": "(2026)京0105民初88号",
                                              "hotwords": ["不当得利"]}).status_code == 201

    async def main():
        events: list[dict] = []

        async def watch():
            async with websockets.connect(ws(server, "/v1/hearings/h-hot/events")) as sub:
                async for raw in sub:
                    events.append(json.loads(raw))
                    if events[-1]["type"] == "hotwords":
                        return
        watcher = asyncio.create_task(watch())
        streaming = asyncio.create_task(stream_file(ws(server, "/v1/stream"), data_dir / "zh-smoke" / "welcome.wav",
                                                    hearing_id="h-hot", role="审判长"))
        await asyncio.sleep(2.0)  # mid-utterance
        r = await asyncio.to_thread(httpx.put, f"{api}/h-hot/hotwords", headers=CLERK,
                                    json={"words": ["达摩院", "不当得利", " 达摩院 "]})
        await asyncio.wait_for(watcher, 10)
        await streaming
        return r, events
    r, events = asyncio.run(main())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hotwords"] == ["达摩院", "不当得利"] and body["running_sources"] == 1  # the live source took them
    assert "达摩院" in body["words"] and "张三" in body["words"]  # with the parties' names
    assert events[-1]["words"] == body["words"]  # every open screen's panel
    assert httpx.get(f"{api}/h-hot/hotwords").json()["hotwords"] == ["达摩院", "不当得利"]
    before = httpx.get(f"{api}/h-hot/verify").json()["entries"]
    r = httpx.put(f"{api}/h-hot/hotwords", headers=CLERK, json={"words": ["达摩院"]})
    assert r.json()["hotwords"] == ["达摩院"] and r.json()["running_sources"] == 0  # the stream has ended
    after = httpx.get(f"{api}/h-hot/verify").json()
    assert after["entries"] == before + 1 and after["ok"] is True  # each change is a ledger entry
    httpx.post(f"{api}/h-hot/close", headers=CLERK)
    httpx.post(f"{api}/h-hot/signatures", json={"by": "王法官", "role": "presiding_judge"})
    late = httpx.put(f"{api}/h-hot/hotwords", headers=CLERK, json={"words": ["改"]})
    assert late.status_code == 409 and late.json()["detail"]["code"] == "locked"


def test_screens_hear_each_change_to_an_utterance_under_its_name_and_its_protocol_1_name(server, data_dir):
    """A clerk's edit, split and merge reach every screen as ``utterance_changed`` /
    ``utterance_removed``; subscribers and API clients written for the first names (``line``,
    ``line_removed``, ``lines``, ``line``) still get them (docs/protocol.md)."""
    api = f"{server}/v1/hearings"
    assert httpx.post(api, headers=CLERK, json={"id": "h-names", "channels": {"0": "presiding_judge"}}).status_code == 201
    result = asyncio.run(stream_file(ws(server, "/v1/stream"), data_dir / "zh-smoke" / "justice.wav", speed=0,
                                     hearing_id="h-names"))
    first, second = [f["utterance"]["id"] for f in result.finals][:2]

    async def change() -> tuple[list[dict], dict, dict]:
        async with websockets.connect(ws(server, "/v1/hearings/h-names/events")) as sub:
            assert json.loads(await sub.recv())["type"] == "subscribed"
            async with httpx.AsyncClient(headers=CLERK) as http:
                r = await http.patch(f"{api}/h-names/utterances/{first}", json={"text": "正是因为存在绝对正义，所以"})
                assert r.status_code == 200, r.text
                split = (await http.post(f"{api}/h-names/utterances/{first}/split", json={"at": 10})).json()
                merged = (await http.post(f"{api}/h-names/utterances/{split['utterances'][1]['id']}/merge",
                                          json={"other": second})).json()
            seen = []
            while not any(e["type"] == "line_removed" for e in seen):
                seen.append(json.loads(await asyncio.wait_for(sub.recv(), 30)))
            return seen, split, merged

    seen, split, merged = asyncio.run(change())
    seen = [e for e in seen if e["type"] in ("utterance_changed", "line", "utterance_removed", "line_removed")]
    assert [e["type"] for e in seen] == ["utterance_changed", "line"] * 3 + ["utterance_removed", "line_removed"]
    assert [e["utterance"]["text"] for e in seen if e["type"] == "utterance_changed"] == \
        ["正是因为存在绝对正义，所以", "正是因为存在绝对正义", "，所以"]
    assert split["utterances"] == split["lines"] and merged["utterance"] == merged["line"]
    assert seen[-2] == {**seen[-1], "type": "utterance_removed"} and seen[-2]["merged_into"] == merged["utterance"]["id"]
    record = httpx.get(f"{api}/h-names").json()
    assert second not in [u["id"] for u in record["utterances"]] and httpx.get(f"{api}/h-names/verify").json()["ok"]
    audio = httpx.get(f"{api}/h-names/utterances/{first}/audio")
    assert audio.headers["X-Utterance-Offset-Ms"] == audio.headers["X-Line-Offset-Ms"]


def test_every_place_that_offers_a_format_takes_it_from_the_writer_registry(server):
    """The API's ``format``, the pages' list, the package's files and the CLI's choices are the
    registry's: a format added there is offered everywhere, and none is offered that it lacks."""
    from courtscribe.records import formats
    from courtscribe.records.service import EXPORTS

    spec = httpx.get(f"{server}/openapi.json").json()
    param = next(p for p in spec["paths"]["/v1/hearings/{hearing_id}/export"]["get"]["parameters"]
                 if p["name"] == "format")
    schema = param["schema"]
    enum = schema.get("enum") or spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]["enum"]
    assert tuple(enum) == EXPORTS == (*formats.WRITERS, "package")
    listed = httpx.get(f"{server}/v1/formats").json()["formats"]
    assert [f["format"] for f in listed] == list(EXPORTS)
    assert {f["format"] for f in listed if f["on_page"]} == {"docx", "pdf", "ofd"}
    assert httpx.post(f"{server}/v1/hearings", headers=CLERK, json={"id": "h-formats"}).status_code == 201
    zipped = httpx.get(f"{server}/v1/hearings/h-formats/export", params={"format": "package"}, timeout=120)
    names = set(json.loads(zipfile.ZipFile(io.BytesIO(zipped.content)).read(package.MANIFEST))["files"])
    assert {w.packaged_as for w in formats.WRITERS.values() if w.packaged_as} <= names


def test_a_voice_is_named_once_for_all_its_lines_and_the_screens_hear_each(server, data_dir):
    api = f"{server}/v1/hearings"
    clip = (data_dir / "zh-smoke" / "market_25s.wav").read_bytes()
    job = httpx.post(f"{server}/v1/jobs", files={"file": ("m.wav", clip)}, data={"hearing_id": "h-voice"}).json()
    for _ in range(600):  # the machine's lines, each under the voice the diarizer heard
        state = httpx.get(f"{server}/v1/jobs/{job['id']}").json()
        if state["status"] in ("done", "failed"):
            break
        asyncio.run(asyncio.sleep(0.2))
    lines = httpx.get(f"{api}/h-voice").json()["utterances"]
    voice = lines[0]["speaker"]
    theirs = [u["id"] for u in lines if u["speaker"] == voice]

    async def name_and_watch() -> tuple[list[str], list[dict]]:
        async with websockets.connect(ws(server, "/v1/hearings/h-voice/events")) as screen:
            json.loads(await screen.recv())  # hello
            named = await asyncio.to_thread(httpx.post, f"{api}/h-voice/voices/{quote(voice)}", headers=CLERK,
                                            json={"speaker": "原告 张三", "role": "plaintiff", "participant": "张三"})
            ids, seen = [u["id"] for u in named.json()["utterances"]], []
            while len(seen) < len(ids):  # each change, as the screens hear it (beside its protocol-1 twin)
                if (e := json.loads(await screen.recv()))["type"] == "utterance_changed":
                    seen.append(e)
            return ids, seen
    named, seen = asyncio.run(name_and_watch())
    assert named == theirs and [(e["type"], e["utterance"]["speaker"]) for e in seen] == \
        [("utterance_changed", "原告 张三")] * len(theirs)
    after = httpx.get(f"{api}/h-voice").json()["utterances"]
    assert [u["id"] for u in after if u["speaker"] == "原告 张三"] == theirs  # every line of that voice, no other
    undone = httpx.delete(f"{api}/h-voice/voices/{quote(voice)}", headers=CLERK).json()
    assert [u["speaker"] for u in undone["utterances"]] == [voice] * len(theirs)
    assert httpx.get(f"{api}/h-voice/verify").json()["ok"]


def test_the_servers_address_opens_the_front_page_and_a_wrong_case_number_is_said_as_documented(server):
    r = httpx.get(f"{server}/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/ui/"
    bad = httpx.post(f"{server}/v1/hearings", headers=CLERK, json={"case_number": "2026京0105民初1号"})
    assert bad.status_code == 422
    assert bad.json()["detail"]["code"] == "bad_case_number" and "收案年度" in bad.json()["detail"]["message"]


def test_the_clerk_notes_a_partys_refusal_but_never_a_judges_signature(server):
    api = f"{server}/v1/hearings"
    made = httpx.post(api, headers=CLERK, json={"id": "h-refuse", "participants": [
        {"role": "presiding_judge", "name": "王法官"}, {"role": "plaintiff", "name": "张三"}]})
    assert made.status_code == 201
    assert httpx.post(f"{api}/h-refuse/close", headers=CLERK).status_code == 200
    judge = httpx.post(f"{api}/h-refuse/party-signatures", headers=CLERK,
                       json={"name": "王法官", "role": "presiding_judge"})
    assert judge.status_code == 422 and judge.json()["detail"]["code"] == "not_a_party"
    refused = httpx.post(f"{api}/h-refuse/party-signatures", headers=CLERK,
                         json={"name": "张三", "role": "plaintiff", "refused": True, "reason": "不同意笔录第三页"})
    signers = {(s["role"], s["name"]): s for s in refused.json()["signers"]}
    assert signers[("presiding_judge", "王法官")]["state"] == "pending"
    assert (signers[("plaintiff", "张三")]["state"], signers[("plaintiff", "张三")]["reason"]) == \
        ("refused", "不同意笔录第三页")
    from courtscribe.records import layout
    from courtscribe.records.model import Record

    printed = layout.blocks(Record.model_validate(httpx.get(f"{api}/h-refuse").json()))
    rows = dict(next(b for b in printed if b.kind == "signatures").rows or [])
    assert rows["原告张三（签名）"].startswith("拒绝签名：不同意笔录第三页")  # the 笔录 says it
    assert httpx.get(f"{api}/h-refuse/verify").json()["ok"]


def test_a_mixed_source_that_reconnects_keeps_its_voices_numbers_and_names(server, data_dir):
    """One microphone, two voices, the clerk names one; the source reconnects: the same voices come
    back under the same number and the same name, not renumbered from 说话人1 (which would put two
    people's lines under one label, and the clerk's naming on the wrong person). Undoing the name
    then takes it off every line, those written under it live too."""
    import numpy as np

    from courtscribe.audio import decode
    from courtscribe.clients import stream

    api = f"{server}/v1/hearings"
    justice, market = (decode(data_dir / "zh-smoke" / f"{n}.wav").channel(0) for n in ("justice", "market_25s"))
    assert httpx.post(api, headers=CLERK, json={"id": "h-rejoin"}).status_code == 201

    def send(audio: np.ndarray) -> dict:
        async def chunks():
            for i in range(0, audio.size, 3200):
                yield audio[i:i + 3200]
        return asyncio.run(stream(ws(server, "/v1/stream"), chunks(), hearing_id="h-rejoin", speed=0)).ready

    send(np.concatenate([justice, market[:160_000]]))
    before = httpx.get(f"{api}/h-rejoin").json()["utterances"]
    judge, other = before[0]["speaker"], before[-1]["speaker"]
    assert judge != other  # the labeller told the two apart (else this test shows nothing)
    named = httpx.post(f"{api}/h-rejoin/voices/{quote(judge)}", headers=CLERK,
                       json={"speaker": "原告 张三", "role": "plaintiff", "participant": "张三"})
    assert named.status_code == 200, named.text
    rejoined = send(np.concatenate([market[160_000:], justice]))["offset_ms"]
    after = [u for u in httpx.get(f"{api}/h-rejoin").json()["utterances"] if u["start_ms"] >= rejoined]
    assert after[0]["speaker"] == other  # market's voice: its number, not 说话人1 again
    assert (after[-1]["speaker"], after[-1]["role"], after[-1]["participant"]) == ("原告 张三", "plaintiff", "张三")
    undone = httpx.delete(f"{api}/h-rejoin/voices/{quote(judge)}", headers=CLERK, params={"channel": 0})
    assert after[-1]["id"] in [u["id"] for u in undone.json()["utterances"]]  # written under the name live: undone too
    lines = httpx.get(f"{api}/h-rejoin").json()["utterances"]
    assert not [u for u in lines if u["speaker"] == "原告 张三"]
    assert httpx.get(f"{api}/h-rejoin/verify").json()["ok"]


def test_a_speaker_given_with_a_role_is_the_person_the_record_prints_beside_it():
    """``{speaker: 张三, role: 原告}`` printed 原告：… without the name the clerk gave (the screen sends
    it as ``participant``; a script need not know that)."""
    from courtscribe.records.model import Utterance
    from courtscribe.server.hearings import UtteranceChange

    named = UtteranceChange(speaker="张三", role="原告")
    line = Utterance(id="u1", start_ms=0, end_ms=1, text="好。", speaker=named.speaker, role=named.role,
                     participant=named.participant)
    assert line.speaker_label == "原告张三"
    for nobody in ("原告", "说话人2"):  # the role's own label, a machine's voice number
        assert UtteranceChange(speaker=nobody, role="原告").participant is None
    assert UtteranceChange(speaker="张三").participant is None  # no role to print it beside
    assert UtteranceChange(speaker="张三", role="原告", participant="张三丰").participant == "张三丰"


def test_a_hearing_recorded_elsewhere_takes_the_times_the_clerk_states(server):
    """A recording uploaded after the day: the clerk says when it opened and closed (Beijing time),
    never a time still to come, never a 闭庭 before the 开庭."""
    import datetime as dt

    api = f"{server}/v1/hearings"
    assert httpx.post(api, headers=CLERK, json={"id": "h-when", "scheduled_at": "2026-03-18T09:00:00"}).status_code == 201
    assert httpx.post(f"{api}/h-when/open", headers=CLERK, json={"at": "2026-03-18T09:05:00"}).status_code == 200
    early = httpx.post(f"{api}/h-when/close", headers=CLERK, json={"at": "2026-03-18T08:00:00"})
    assert early.status_code == 400 and "闭庭" in early.json()["detail"]["message"]
    assert httpx.post(f"{api}/h-when/close", headers=CLERK, json={"at": "2999-01-01T00:00:00"}).status_code == 400
    assert httpx.post(f"{api}/h-when/close", headers=CLERK, json={"at": "2026-03-18T11:30:00+08:00"}).json()["status"] == "closed"
    hearing = httpx.get(f"{api}/h-when").json()["hearing"]
    beijing = dt.timezone(dt.timedelta(hours=8))
    assert dt.datetime.fromisoformat(hearing["started_at"]) == dt.datetime(2026, 3, 18, 9, 5, tzinfo=beijing)
    assert dt.datetime.fromisoformat(hearing["closed_at"]) == dt.datetime(2026, 3, 18, 11, 30, tzinfo=beijing)
