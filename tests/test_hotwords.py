import pytest

from courtscribe.asr.hotwords import (HotwordError, PartialBiaser, clean, corrector, court_lexicon, load_lexicon, merge,
                                      parse_weighted)


def test_funasr_hotword_forms():
    assert parse_weighted('{"张三": 20, "借款合同": 10.5}') == {"张三": 20.0, "借款合同": 10.5}
    assert parse_weighted("张三 李四") == {"张三": 1.0, "李四": 1.0}
    assert parse_weighted("阿里巴巴,通义实验室，张三") == {"阿里巴巴": 1.0, "通义实验室": 1.0, "张三": 1.0}  # FunASR client
    assert parse_weighted(["张三"]) == {"张三": 1.0}
    assert parse_weighted(None) == {} and parse_weighted("") == {}


def test_string_weights_are_refused_out_loud_and_the_rest_kept():
    with pytest.raises(HotwordError) as err:
        parse_weighted('{"张三": 20, "李四": "20", "王五": true}')
    assert err.value.usable == {"张三": 20.0}
    assert "李四" in str(err.value) and "王五" in str(err.value) and "numbers" in str(err.value)
    with pytest.raises(HotwordError):
        parse_weighted("42")


def test_only_word_shaped_entries_reach_an_engine():
    words = ["张三", " 张三 ", "", "http://evil/x", "HTTPS://x", "list.txt", "a b", "x" * 40, "O'Brien", "COVID-19"]
    assert clean(words) == ("张三", "O'Brien", "COVID-19")
    assert len(clean(f"词{i}" for i in range(500))) == 200


def test_lexicon_file_and_merge_order(tmp_path):
    lex = tmp_path / "lexicon.txt"
    lex.write_text("# 法律词表\n民法典 30\n诉讼时效\n\n张三\n", encoding="utf-8")
    court = court_lexicon()
    assert load_lexicon(lex)[:3] == ("民法典", "诉讼时效", "张三")  # the court's own file first
    assert load_lexicon(lex)[3:] == tuple(w for w in court if w not in ("民法典", "张三"))
    assert load_lexicon(None) == court
    assert merge(("李四", "张三"), ["王五"], load_lexicon(lex))[:5] == ("李四", "张三", "王五", "民法典", "诉讼时效")


def test_the_court_vocabulary_ships_in_the_package():
    court = court_lexicon()
    for term in ("审判长", "人民陪审员", "委托诉讼代理人", "异议", "回避", "质证", "法庭辩论", "休庭", "笔录",
                 "民间借贷纠纷", "危险驾驶罪", "民法典", "中华人民共和国民事诉讼法"):
        assert term in court
    assert court[:4] == ("审判长", "审判员", "人民陪审员", "书记员")  # roles first: Whisper's prompt takes the top


def test_finals_are_corrected_towards_the_court_vocabulary_only_where_no_word_was_heard():
    fix = corrector(court_lexicon() + ("张三",))
    assert fix("宿宋请求，原告有没有意义，现在修停，请核对比录") == "诉讼请求，原告有没有意义，现在休庭，请核对笔录"
    assert fix("员告借带，备告举正") == "原告借贷，被告举证"
    # real words that sound like a court term stay: 意义 (异议), 调节 (调解), 书籍 (书记)
    assert fix("这有什么意义，请调节音量，我买了书籍") == "这有什么意义，请调节音量，我买了书籍"
    assert fix("章三到庭") == "张三到庭"  # the hearing's own names replace whatever sounds like them


def test_partials_are_biased_by_sound():
    bias = PartialBiaser(("张三", "张三丰", "借款合同", "王", "Smith"))
    assert bias("被告章三说借宽合同") == "被告张三说借款合同"
    assert bias("证人张三风到庭") == "证人张三丰到庭"  # the longer name wins
    assert bias("刘律师") == "刘律师"  # n/l folding does not turn 刘 into anything here
    assert bias("我们知道了") == "我们知道了"
    assert PartialBiaser(())("张山") == "张山"
