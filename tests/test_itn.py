import pytest

from courtscribe.asr.itn import itn


@pytest.mark.parametrize("spoken, written", [
    ("二零二四年三月五日开庭", "2024年3月5日开庭"),
    ("三月五日", "3月5日"),
    ("被告支付人民币十二万五千元", "被告支付人民币125000元"),
    ("借款二十万元，利息百分之二十四", "借款20万元，利息24%"),
    ("根据第一百零三条", "根据第103条"),
    # a court record keeps these as words
    ("下午三点十五分", "下午三点十五分"),
    ("四分之三", "四分之三"),
    ("一百二十三点五米", "一百二十三点五米"),
    # and context the FSTs know: no digits here
    ("他说一下", "他说一下"),
    ("第一被告", "第一被告"),
    ("一会儿我们休息一下", "一会儿我们休息一下"),
    ("现在开庭", "现在开庭"),
    ("", ""),
])
def test_court_style_itn(spoken, written):
    assert itn(spoken) == written
