from courtscribe.text import for_scoring, join_pieces, tidy


def test_traditional_becomes_simplified():
    assert tidy("我們接受現實的相對正義") == "我们接受现实的相对正义"


def test_chinese_punctuation_after_chinese_only():
    assert tidy("我想问,我在滨海新区有房.") == "我想问，我在滨海新区有房。"
    assert tidy("He must be home now, for the light is on.") == "He must be home now, for the light is on."
    assert tidy("金额为3.5万元") == "金额为3.5万元"


def test_spaces_between_chinese_removed_and_repeats_collapsed():
    assert tidy("现在 开庭 ,, 请坐") == "现在开庭，请坐"


def test_join_pieces_spaces_latin_words_only():
    assert join_pieces(["He must be", "home now.", "他一定在家"]) == "He must be home now.他一定在家"
    assert join_pieces(["审判长", "请", ""]) == "审判长请"


def test_scoring_form():
    assert for_scoring("He must, 他一定在家。") == "hemust他一定在家"
    assert for_scoring("說話") == "说话"


def test_a_preview_that_fell_into_a_loop_keeps_the_words_before_it():
    from courtscribe.text import unlooped

    assert unlooped("而一些数字比较明确，而一些数字比较明确，而一些数字比较明确") == "而一些数字比较明确"
    assert unlooped("被告证证证证证证证证证") == "被告证"
    assert unlooped("再取8~913条，因为这三条的话比较典型。") == "再取8~913条，因为这三条的话比较典型。"


def test_a_line_prints_in_the_order_it_was_written():
    """A bidi override pasted into a correction would make the page read otherwise than the record:
    it becomes a visible mark, as a control character does."""
    from courtscribe.text import printable

    assert printable("他欠我\u202e元万五") == "他欠我〔?〕元万五"
    assert printable("a\u2066b\u2069c\x0bd") == "a〔?〕b〔?〕c〔?〕d"
    assert printable("阿依古丽·买买提\n第二行") == "阿依古丽·买买提\n第二行"
