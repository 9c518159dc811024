"""Court-style numbers after any engine (asr/numbers.py): FunASR's spoken forms and Whisper's mixed ones."""
import pytest

from courtscribe.asr.finals import polish
from courtscribe.asr.numbers import court_style


@pytest.mark.parametrize("heard, written", [
    # amounts: digits only, no separators, no 万
    ("被告支付人民币十二万五千元", "被告支付人民币125000元"),
    ("被告应支付12万5千元", "被告应支付125000元"),
    ("借款1万元", "借款10000元"),
    ("借款1.5万元", "借款15000元"),
    ("共计125,000元", "共计125000元"),
    ("借款二十万元，利息百分之二十四", "借款200000元，利息24%"),
    ("罚金6, 437元", "罚金6437元"), ("月薪21千元", "月薪21000元"),  # Whisper's ways with amounts
    ("证据1, 234页", "证据1, 234页"),  # a list, not an amount
    ("在10万员的范围内", "在100000元的范围内"), ("赔偿20000员", "赔偿20000元"),  # 员 heard for 元
    ("裁减500名员工", "裁减500名员工"), ("共有3000员工", "共有3000员工"), ("编制2万员额", "编制2万员额"),
    # dates, rates, articles
    ("二零二五年三月一日", "2025年3月1日"),
    ("于20 25年3月1日", "于2025年3月1日"),
    ("年利率3. 65%", "年利率3.65%"),
    ("年利率百分之3.65", "年利率3.65%"),
    ("利率百分之三点六五", "利率3.65%"),
    ("依据民法典第四十四条", "依据民法典第44条"),
    # case numbers, spoken digit by digit or written by an engine
    ("二零二六 京 零一零五 民初 四千三百二十一 号", "(2026)京0105民初4321号"),
    ("（2026）京0105民初4321号", "(2026)京0105民初4321号"),
    ("2026年沪0101刑初88号", "(2026)沪0101刑初88号"),
    ("本案案号是2026京0105民初4,321号", "本案案号是(2026)京0105民初4321号"),
    # words that only look like numbers stay words
    ("一审", "一审"), ("第一", "第一"), ("三方", "三方"), ("一次", "一次"), ("下午两点", "下午两点"),
    ("第一被告", "第一被告"), ("他说一下", "他说一下"), ("我们在2026年开庭", "我们在2026年开庭"),
    ("序号1,2,3", "序号1,2,3"), ("", ""),
])
def test_court_style(heard, written):
    assert court_style(heard) == written


def test_a_misheard_case_number_becomes_the_hearings_own():
    # 金 for 京 could as well be 津 (both jin): only the hearing's own case number settles it
    heard = "案号是2026金0105名出4,321号"
    assert court_style(heard) == "案号是2026金0105名出4321号"  # never an invented court code
    assert polish(heard, ("2026京0105民初4321号",)) == "案号是(2026)京0105民初4321号"
    assert polish(heard, ("2026京0105民初9999号",)) == "案号是2026金0105名出4321号"
    assert polish("案后为2026经105名出4321号", ("2026京0105民初4321号",)) == "案后为(2026)京0105民初4321号"  # 0 dropped
