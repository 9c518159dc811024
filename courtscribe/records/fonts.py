"""The typeface printed 笔录 are set in, embedded in every PDF and OFD: Noto Serif CJK SC (SIL Open
Font License: embedding allowed), from Debian's ``fonts-noto-cjk`` (pinned by hash, as the models are).

A reader without Asian fonts still shows the record, and archives (PDF/A) require embedded fonts.
Each document embeds only the glyphs it uses: the font is cut to the document's characters and its
PostScript (CFF) outlines are redrawn as TrueType curves, which every PDF toolkit embeds and every
reader renders (``COURTSCRIBE_FONT_FILE`` points at another CJK OpenType/TrueType font).
"""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fontTools import subset as ftsubset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont, newTable

from . import layout
from .layout import Block

DEBIAN = Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc")
SHA256 = "a04178ec485dffdff7cc0c0c20e1fce9202d7e2160d805e8e44a4c8841c58481"  # fonts-noto-cjk 1:20220127+repack1-1
FAMILY = "Noto Serif CJK SC"
MUST = "第页共签名：（）〔〕[]＿ 0123456789"  # what renderers add around the text (page numbers, stamps)


class FontMissing(RuntimeError):
    """No embeddable CJK font: say how to get one rather than print a record nobody can read."""


@dataclass(frozen=True)
class Subset:
    data: bytes  # a TrueType font with just the document's glyphs
    name: str  # its PostScript name
    units_per_em: int
    advance: dict[str, int]  # character → advance width in font units (layout of fixed pages: OFD)


def font_file() -> Path:
    path = Path(os.environ.get("COURTSCRIBE_FONT_FILE") or DEBIAN)
    if not path.is_file():
        raise FontMissing(f"the 笔录 font {path} is missing: install Debian's fonts-noto-cjk "
                          "(`make serve` does), or set COURTSCRIBE_FONT_FILE to a CJK font file")
    return path


def verify() -> tuple[bool, str]:
    """(ok, what): the shipped font is the pinned file (another file named by the setting is taken as is)."""
    path = font_file()
    if os.environ.get("COURTSCRIBE_FONT_FILE"):
        return True, f"{path} (set by COURTSCRIBE_FONT_FILE, not pinned)"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest == SHA256, f"{path} sha256 {digest[:12]}…"


def _open(path: Path) -> TTFont:
    if path.suffix.lower() in (".ttc", ".otc"):
        for font in TTCollection(str(path), lazy=True).fonts:
            if font["name"].getDebugName(1) == FAMILY:
                return font
        return TTCollection(str(path), lazy=True).fonts[0]
    return TTFont(str(path), lazy=True)


@lru_cache(maxsize=4)
def _covered(path: Path) -> frozenset[int]:
    return frozenset(_open(path).getBestCmap())


def drawable(blocks: list[Block]) -> list[Block]:
    """The blocks as a page with this font can show them: a character it has no glyph for (an emoji,
    a script other than Chinese and Latin) is written as its code point, 〔U+1F600〕, never a box or
    nothing, and a note at the end says so (the DOCX and record.json keep the characters)."""
    covered = _covered(font_file())
    lacking = {c for c in layout.characters(blocks) if ord(c) not in covered and not c.isspace()}
    if not lacking:
        return blocks

    def shown(text: str) -> str:
        return "".join(f"〔U+{ord(c):04X}〕" if c in lacking else c for c in text)
    out = [Block(b.kind, shown(b.text), shown(b.who), shown(b.stamp),
                 [(shown(k), shown(v)) for k, v in b.rows] if b.rows is not None else None) for b in blocks]
    note = (f"注：本页面所用字体无以下{len(lacking)}个字符的字形，以〔U+编码〕标出，原字见本笔录的 DOCX 与 "
            "record.json：" + "、".join(f"U+{ord(c):04X}" for c in sorted(lacking)))
    return [*out, Block("note", note)]


@lru_cache(maxsize=32)
def subset(characters: str) -> Subset:
    """The font cut to ``characters`` (plus page furniture), with TrueType outlines."""
    font = _open(font_file())
    options = ftsubset.Options()
    options.layout_features, options.name_IDs, options.notdef_outline = [], ["*"], True
    options.hinting, options.desubroutinize = False, True
    sub = ftsubset.Subsetter(options)
    sub.populate(text="".join(sorted(set(characters + MUST))))
    sub.subset(font)
    if "CFF " in font:
        _to_truetype(font)
    # a name of its own per subset: readers (and reportlab's registry) tell subsets of one font by it
    name = f"{font['name'].getDebugName(6) or 'NotoSerifCJKsc-Regular'}-{hashlib.sha256(characters.encode()).hexdigest()[:8]}"
    for record in font["name"].names:
        if record.nameID in (4, 6):
            record.string = name
    buf = io.BytesIO()
    font.save(buf)
    cmap = font.getBestCmap()
    hmtx = font["hmtx"].metrics
    return Subset(buf.getvalue(), name, font["head"].unitsPerEm,
                  {chr(cp): hmtx[g][0] for cp, g in cmap.items() if g in hmtx})


def _to_truetype(font: TTFont, max_err: float = 1.0) -> None:
    """Redraw CFF (cubic) outlines as glyf (quadratic) ones: what PDF toolkits and OFD readers embed."""
    order = font.getGlyphOrder()
    glyphs = font.getGlyphSet()
    quadratic = {}
    for name in order:
        pen = TTGlyphPen(glyphs)
        glyphs[name].draw(Cu2QuPen(pen, max_err, reverse_direction=True))
        quadratic[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf = newTable("glyf")
    glyf.glyphOrder, glyf.glyphs = order, quadratic
    for tag in ("CFF ", "VORG"):
        if tag in font:
            del font[tag]
    glyf.compile(font)
    hmtx = font["hmtx"].metrics
    for name, g in quadratic.items():
        hmtx[name] = (hmtx[name][0], getattr(g, "xMin", 0) if g.numberOfContours else 0)
    maxp = font["maxp"] = newTable("maxp")
    maxp.tableVersion, maxp.maxZones, maxp.maxComponentElements = 0x00010000, 1, 0
    for field in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs", "maxStackElements",
                  "maxSizeOfInstructions"):
        setattr(maxp, field, 0)
    post = font["post"]
    post.formatType, post.extraNames, post.mapping = 3.0, [], {}
    font.sfntVersion = "\x00\x01\x00\x00"
