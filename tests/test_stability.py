"""A partial's settled prefix (streaming/stability.py): what later partials keep."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from courtscribe.streaming.stability import Stabilizer, agreed, aligned_end


def test_a_word_flipping_back_and_forth_is_settled_once_two_agree_and_never_changes_back():
    """As Whisper's previews of news_foxconn.wav did: 富士康 / 故事康 alternating, 。 becoming ，."""
    s = Stabilizer()
    assert s.update("富士康在印度工厂出现大规模感染。") == ("富士康在印度工厂出现大规模感染。", 0)
    assert s.update("故事康在印度工厂出现大规模感染，目前公。")[1] == 0  # nothing agreed yet
    shown, stable = s.update("富士康在印度工厂出现大规模感染，目前工厂产量。")  # agrees with the one two back
    assert shown[:stable] == "富士康在印度工厂出现大规模感染，"
    shown, stable = s.update("故事康在印度工厂出现大规模感染，目前工厂产量下降")
    assert shown == "富士康在印度工厂出现大规模感染，目前工厂产量下降"  # the settled reading stays
    assert stable >= len("富士康在印度工厂出现大规模感染，")


def test_a_number_still_being_read_is_not_settled():
    """The flip the first court day saw: "再去893条" / "再去8~913条" every 0.6 s."""
    s = Stabilizer()
    s.update("被告再去893条")
    shown, stable = s.update("被告再去8913条")
    assert shown[:stable] == "被告再去"  # "8" may be the start of another number
    for preview in ["被告再去893条", "被告再去8~913条", "被告再去893条"]:
        shown, later = s.update(preview)
        assert shown.startswith("被告再去") and later >= stable


def test_the_final_mark_of_a_preview_does_not_swallow_what_follows():
    assert aligned_end("就是有一种推理或者解释的。", "就是有一种推理或者解释的一种感觉。") == len("就是有一种推理或者解释的")
    assert agreed("现在开庭。核对", "现在开庭，核对当事") == "现在开庭，核对"


readings = st.lists(st.text(alphabet="现在开庭核对当事人的身份8913。，", min_size=0, max_size=14), min_size=1,
                    max_size=12)


@settings(max_examples=200, deadline=None)
@given(readings)
def test_what_was_settled_is_in_every_later_partial(previews):
    s = Stabilizer()
    settled = ""
    for preview in previews:
        shown, stable = s.update(preview)
        assert shown.startswith(settled) and stable >= len(settled)
        assert stable <= len(shown)
        settled = shown[:stable]
