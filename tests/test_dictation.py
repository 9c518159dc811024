"""The dictated document's DOCX export (server/documents.py): what Word cannot hold is shown, not refused."""
import io

import docx

from courtscribe.server.documents import DocumentIn, to_docx


def paragraphs(**body) -> list[str]:
    answer = to_docx(DocumentIn(**body), who=None)
    return [p.text for p in docx.Document(io.BytesIO(answer.body)).paragraphs]


def test_control_characters_pasted_into_a_ruling_export_as_a_visible_mark():
    """A page break or bell pasted from Word would make the XML unreadable: each is a 〔?〕 the judge
    can see and fix, and the export goes through."""
    assert paragraphs(title="民事\x01判决书", text="第一页\f第二页\x07。\n\n本院认为\x1b。") == [
        "民事〔?〕判决书", "第一页〔?〕第二页〔?〕。", "本院认为〔?〕。"]


def test_a_dictated_document_keeps_its_paragraphs_and_lines():
    assert paragraphs(title="  民事判决书\n", text="判决如下：\r\n一、驳回。\r\n\r\n\r\n本判决为终审判决。") == [
        "民事判决书", "判决如下：\n一、驳回。", "本判决为终审判决。"]
