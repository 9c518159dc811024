"""The parts of a court case number (案号) every layer needs: the 法院代字 and 类型代字 courts use
(最高人民法院《关于人民法院案件案号的若干规定》, 法〔2018〕359号) and the 案号 as a word. The
engine's number pass (``asr/numbers.py``) and the record's checks (``records/cases.py``) both
read them here, so neither reaches into the other.
"""
from __future__ import annotations

import re

# 法院代字: provinces' one-character names (and 兵团 courts' 兵), 最高法 for the Supreme People's Court.
PROVINCES = "京津沪渝冀晋蒙辽吉黑苏浙皖闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新兵港澳台"
# 类型代字 in common use (法〔2018〕359号 annex): civil, criminal, administrative, enforcement, state compensation.
CASE_TYPES = ("民初", "民终", "民再", "民申", "民抗", "民特", "民催", "民督", "民辖", "民辖终", "民监",
              "刑初", "刑终", "刑再", "刑申", "刑抗", "刑更", "刑监", "刑辖",
              "行初", "行终", "行再", "行申", "行审", "行审复", "行辖",
              "执", "执恢", "执异", "执复", "执监", "执保", "执协", "破", "破申", "强清", "司惩", "司救",
              "法赔", "委赔", "赔", "财保", "诉保", "认台", "认港", "认澳", "协外认", "知民初", "知民终")


def case_word(case_number: str | None) -> str:
    """A case number as a hotword (word-shaped: no brackets), so a misheard one can be matched to it."""
    return re.sub(r"[()（）〔〕\[\]\s]", "", case_number or "")
