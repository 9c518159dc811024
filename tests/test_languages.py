"""Where an utterance changes language (asr/languages.py): stretches to decode apart."""
import numpy as np

from courtscribe.asr.languages import language_runs, quietest

SR = 16_000


def speech(seconds: float, quiet_at: tuple[float, float] | None = None) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal(int(seconds * SR)).astype(np.float32) * 0.1
    if quiet_at:
        x[int(quiet_at[0] * SR):int(quiet_at[1] * SR)] *= 0.01
    return x


def runs(audio, windows, language="zh"):
    return language_runs(audio, windows, language, sample_rate=SR, window_s=2.0, hop_s=1.0)


def test_one_language_is_one_stretch_in_the_utterances_language():
    x = speech(8.0)
    assert runs(x, [{"zh": 0.9, "en": 0.05}] * 7) == [(0, 8000, "zh")]
    assert runs(x, []) == [(0, 8000, "zh")]  # too short to look inside
    # a window nobody is sure of changes nothing
    assert runs(x, [{"zh": 0.9}, {"en": 0.5, "zh": 0.4}, {"zh": 0.9}]) == [(0, 8000, "zh")]


def test_two_languages_are_cut_at_the_quietest_moment_between_them():
    x = speech(8.0, quiet_at=(2.40, 2.48))
    windows = [{"en": 0.7, "zh": 0.1}, {"en": 0.4, "zh": 0.5}, {"zh": 0.9}, {"zh": 0.95}, {"zh": 0.9}]
    out = runs(x, windows)
    assert [lang for *_, lang in out] == ["en", "zh"]
    (a, cut, _), (cut2, end, _) = out
    assert (a, end) == (0, 8000) and cut == cut2
    assert 2400 <= cut < 2480  # between the two sure windows' centres (1 s, 3 s), where it is quiet


def test_back_and_forth_gives_a_stretch_per_change():
    x = speech(9.0, quiet_at=(2.5, 2.6))
    x[int(4.5 * SR):int(4.6 * SR)] *= 0.01
    windows = [{"zh": 0.9}, {"zh": 0.8}, {"en": 0.8}, {"en": 0.9}, {"zh": 0.9}, {"zh": 0.9}]
    out = runs(x, windows)
    assert [lang for *_, lang in out] == ["zh", "en", "zh"]
    starts = [a for a, *_ in out]
    assert starts[0] == 0 and 2500 <= starts[1] < 2600 and 4500 <= starts[2] < 4600 and out[-1][1] == 9000
    assert all(a < b for a, b, _ in out)


def test_quietest_stays_inside_its_bounds():
    x = speech(3.0, quiet_at=(0.1, 0.2))  # quietest outside the range asked about
    assert 1000 <= quietest(x, 1000, 2000, SR) <= 2000
    assert quietest(x, 2990, 3500, SR) == 2990  # nothing to measure: the lower bound


def test_no_stretch_is_too_short_to_decode():
    """en / zh / en windows whose quiet moments fall close together: no empty or sub-second piece."""
    x = speech(6.0, quiet_at=(1.98, 2.02))
    windows = [{"en": 0.9}, {"zh": 0.9}, {"en": 0.9}, {"en": 0.9}, {"en": 0.9}]
    out = runs(x, windows)
    assert all(b - a >= 1000 for a, b, _ in out), out
    assert out[0][0] == 0 and out[-1][1] == 6000
    assert all(out[k][1] == out[k + 1][0] for k in range(len(out) - 1))
