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


@pytest.mark.parametrize("said, written", [
    ("案号是二零二四京零一零五民初一二三四号", "案号是(2024)京0105民初1234号"),  # read digit by digit: never 1~23~4
    ("他的电话是一三八一二三四五六七八", "他的电话是13812345678"),
    ("账号是一二三四五六七八九零一二三", "账号是1234567890123"),  # never grouped 123 456 789 0123
    ("身份证号码一一零一零五一九八五零三零七一二三X", "身份证号码11010519850307123X"),
    ("车牌号京A一二三四五", "车牌号京A12345"),
    ("共计三百二十一万零五百元整", "共计3210500元整"),  # not left in words for its 万
    ("上午九时三十分开庭", "上午九时三十分开庭"),  # a time of day, in words whole: never 九时30分
    ("自二〇二三年一月起", "自2023年1月起"),  # 〇 as 零: the whole year, not 二〇23年
    ("双方约定三四天内付清", "双方约定三四天内付清"),  # an approximate number stays in words
])
def test_a_spelled_number_is_written_whole_and_an_approximate_one_stays_words(said, written):
    from courtscribe.asr.finals import polish

    assert polish(said) == written


def test_a_client_that_asks_for_numbers_as_spoken_gets_them_so():
    """FunASR's ``itn: false``: the sentence polished (sound-alikes) but its numbers as spoken."""
    from courtscribe.asr.finals import polish
    from courtscribe.server.funasr_config import Config

    assert polish("超百分之五十") == "超50%" and polish("超百分之五十", itn=False) == "超百分之五十"
    # an engine that writes digits itself (Whisper) is read back as spoken too
    assert polish("超50%，共计125000元", itn=False) == "超百分之五十，共计十二万五千元"
    assert Config({"itn": False}).itn is False and Config({}).itn and Config({"itn": True}).itn
