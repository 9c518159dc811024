import pytest

from courtscribe.asr.hotwords import HotwordError, PartialBiaser, clean, load_lexicon, merge, parse_weighted


def test_funasr_hotword_forms():
    assert parse_weighted('{"张三": 20, "借款合同": 10.5}') == {"张三": 20.0, "借款合同": 10.5}
    assert parse_weighted("张三 李四") == {"张三": 1.0, "李四": 1.0}
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
    assert load_lexicon(lex) == ("民法典", "诉讼时效", "张三")
    assert load_lexicon(None) == ()
    assert merge(("李四", "张三"), ["王五"], load_lexicon(lex)) == ("李四", "张三", "王五", "民法典", "诉讼时效")


def test_partials_are_biased_by_sound():
    bias = PartialBiaser(("张三", "张三丰", "借款合同", "王", "Smith"))
    assert bias("被告章三说借宽合同") == "被告张三说借款合同"
    assert bias("证人张三风到庭") == "证人张三丰到庭"  # the longer name wins
    assert bias("刘律师") == "刘律师"  # n/l folding does not turn 刘 into anything here
    assert bias("我们知道了") == "我们知道了"
    assert PartialBiaser(())("张山") == "张山"
