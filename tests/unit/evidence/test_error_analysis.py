"""Pattern rules on treebank-tokenised sentences, error counts on hand cases, suggestions."""

import json

import pytest

from sentiment_lora.evidence.error_analysis import (
    CONFIDENCE_BIN_EDGES,
    PATTERN_DESCRIPTIONS,
    PATTERNS,
    analyze_errors,
    count_words,
    has_contrast,
    has_irony_markers,
    has_negation,
    has_positive_word_in_negative_context,
    is_very_long,
    is_very_short,
    suggest_improvements,
    tag_patterns,
    tokenize,
)


def test_tokenize_treebank_and_raw_text_alike() -> None:
    assert tokenize("it 's not bad , does n't it ?") == tokenize("It's not bad, doesn't it?")
    assert tokenize("ca n't") == ["ca", "n't"] == tokenize("can't")
    assert tokenize("a so-called `` comedy ''") == ["a", "so-called", "``", "comedy", "''"]
    assert count_words("it 's a charming film .") == 5  # 'it', ''s', 'a', 'charming', 'film'


def test_registry_is_ordered_and_described() -> None:
    assert list(PATTERNS) == [
        "negation",
        "contrast",
        "positive_words_in_negative_context",
        "irony_markers",
        "very_short",
        "very_long",
    ]
    assert set(PATTERN_DESCRIPTIONS) == set(PATTERNS)


@pytest.mark.parametrize(
    "sentence",
    [
        "it 's not a bad film",
        "the movie does n't work at all",
        "i ca n't recommend it",
        "never boring for a minute",
        "nothing here is new",
        "neither funny nor scary",
        "a comedy without a single laugh",
        "the script fails to build any tension",
        "the film lacks charm",
        "hardly the stuff of legend",
    ],
)
def test_negation_positive(sentence: str) -> None:
    assert has_negation(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "a charming and often affecting journey .",
        "not only funny but also moving",  # 'not only' is not negation
        "knotty , notable and nondescript",  # substrings of words do not count
        "a no-nonsense thriller",
    ],
)
def test_negation_negative(sentence: str) -> None:
    assert not has_negation(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "the acting is good but the plot is a mess",
        "however , the ending drags",
        "although it 's long , it never bores",
        "funny , yet oddly sad",
        "while the cast is strong , the script is weak",
        "despite its flaws , a winner",
        "even if you hate musicals , see it",
    ],
)
def test_contrast_positive(sentence: str) -> None:
    assert has_contrast(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "a funny , charming film .",
        "yet another tired teen comedy",
        "it takes a while to get going",
        "it 's anything but boring",
        "not only funny but also moving",
        "it plays as though nobody cared",
    ],
)
def test_contrast_negative(sentence: str) -> None:
    assert not has_contrast(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "it 's not very funny",
        "the film fails to be charming",
        "the acting is good but the plot is a mess",
        "a great cast , yet nothing happens",
        "is n't the best film of the year",
    ],
)
def test_positive_words_in_negative_context_positive(sentence: str) -> None:
    assert has_positive_word_in_negative_context(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "a funny , charming film .",  # positive words, no negator or contrast
        "it 's not a bad film",  # negator, no positive word
        "i do n't know what the director was thinking ; the cast is good",  # negator too far
    ],
)
def test_positive_words_in_negative_context_negative(sentence: str) -> None:
    assert not has_positive_word_in_negative_context(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "it 's supposed to be a comedy",
        "the so-called `` thriller '' never thrills",
        "a `` hilarious '' romp that made nobody laugh",
        "oh , the humanity",
        "yeah right , a masterpiece",
        "what were they thinking ?",
        "what a waste !",
    ],
)
def test_irony_markers_positive(sentence: str) -> None:
    assert has_irony_markers(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "a charming and often affecting journey .",
        "the subtle strength of `` elling '' is its honesty .",  # quotes around a title
        "`` the time machine '' is a movie that has no interest in itself .",
        "the ohio setting is right for the story",  # 'oh' and 'right' only inside other words
    ],
)
def test_irony_markers_negative(sentence: str) -> None:
    assert not has_irony_markers(sentence)


def test_length_rules_at_their_thresholds() -> None:
    five = "very bad , truly very bad ."  # 5 words, punctuation not counted
    assert is_very_short(five) and not is_very_short(five.replace(".", "film ."))
    long34 = " ".join(["word"] * 34)
    assert not is_very_long(long34) and is_very_long(long34 + " more")
    assert not is_very_short(long34) and not is_very_long(five)


def test_one_sentence_can_carry_several_tags() -> None:
    assert tag_patterns("the acting is good but it 's not funny !") == [
        "negation",
        "contrast",
        "positive_words_in_negative_context",
        "irony_markers",
    ]
    assert tag_patterns("a fine , intelligent and deeply felt portrait of grief .") == []


# Hand case: 8 sentences, labels and P(positive) chosen so that
#   index 1: negative predicted positive (FP, confidence 0.96)
#   index 4: positive predicted negative (FN, confidence 0.72)
#   index 5: negative predicted positive (FP, confidence 0.62)
HAND_SENTENCES = [
    "a charming and often affecting journey of a film .",
    "it 's not a bad film , but it is not a good one either .",
    "unflinchingly bleak and desperate from the first scene to the last",
    "the best film of the year , no contest at all",
    "it is never dull and never less than engrossing from start to finish",
    "the acting is good but the plot is a mess .",
    "a lifeless , tedious mess of a movie that drags on",
    "warm , funny and wise in all the right ways",
]
HAND_LABELS = [1, 0, 0, 1, 1, 0, 0, 1]
HAND_PROBS = [0.9, 0.96, 0.1, 0.8, 0.28, 0.62, 0.2, 0.99]


def test_false_positives_and_negatives_on_a_hand_case() -> None:
    a = analyze_errors(HAND_SENTENCES, HAND_LABELS, HAND_PROBS, high_confidence=0.9)
    assert (a.n, a.n_errors, a.false_positives, a.false_negatives) == (8, 3, 2, 1)
    assert a.error_rate == pytest.approx(3 / 8)
    assert a.false_positive_rate == pytest.approx(2 / 4)
    assert a.false_negative_rate == pytest.approx(1 / 4)
    assert [e.index for e in a.errors] == [1, 4, 5]
    fp = a.errors[0]
    assert (fp.label, fp.predicted, fp.confidence) == ("negative", "positive", pytest.approx(0.96))
    fn = a.errors[1]
    assert (fn.label, fn.predicted, fn.confidence) == ("positive", "negative", pytest.approx(0.72))
    assert "negation" in fp.tags and "contrast" in fp.tags
    # confidence of the correct ones: 0.9, 0.9, 0.8, 0.8, 0.99
    assert a.confidence_correct.count == 5
    assert a.confidence_correct.mean == pytest.approx((0.9 + 0.9 + 0.8 + 0.8 + 0.99) / 5)
    assert a.confidence_correct.median == pytest.approx(0.9)
    assert a.confidence_wrong.median == pytest.approx(0.72)
    assert len(CONFIDENCE_BIN_EDGES) == 11
    assert (CONFIDENCE_BIN_EDGES[0], CONFIDENCE_BIN_EDGES[-1]) == (0.5, 1.0)
    assert sum(a.confidence_wrong.histogram) == 3 and len(a.confidence_wrong.histogram) == 10
    assert a.confidence_wrong.histogram[2] == 1  # 0.62 lies in [0.60, 0.65)
    assert a.confidence_wrong.histogram[4] == 1  # 0.72 lies in [0.70, 0.75)
    assert a.confidence_wrong.histogram[9] == 1  # 0.96 lies in [0.95, 1.00]


def test_pattern_summaries_count_share_and_error_rate() -> None:
    a = analyze_errors(HAND_SENTENCES, HAND_LABELS, HAND_PROBS, max_examples=1)
    by_name = {p.name: p for p in a.patterns}
    assert set(by_name) == set(PATTERNS)
    contrast = by_name["contrast"]  # sentences 1 and 5 have 'but'; both are errors
    assert contrast.count == 2
    assert contrast.share_of_errors == pytest.approx(2 / 3)
    assert contrast.error_rate == pytest.approx(1.0)
    assert contrast.examples == [HAND_SENTENCES[1]]  # capped by max_examples
    negation = by_name["negation"]  # sentences 1, 3, 4 have a negator; 1 and 4 are errors
    assert (negation.count, negation.error_rate) == (2, pytest.approx(2 / 3))
    assert by_name["very_long"].error_rate is None  # no sentence is that long
    counts = [p.count for p in a.patterns]
    assert counts == sorted(counts, reverse=True)


def test_high_confidence_errors_are_strictly_above_and_most_confident_first() -> None:
    sentences = ["a", "b", "c", "d", "e"]
    labels = [0, 1, 0, 1, 0]
    probs = [0.97, 0.02, 0.9, 0.92, 0.95]  # errors: 0 (0.97), 1 (0.98), 2 (0.90); 4 (0.95)
    a = analyze_errors(sentences, labels, probs, high_confidence=0.9)
    assert [e.index for e in a.high_confidence_errors] == [1, 0, 4]  # 0.90 is not above 0.9
    assert a.high_confidence_threshold == 0.9


def _analysis_with_dominant(pattern_sentence: str, plain_sentence: str):
    """Six errors with ``pattern_sentence``'s pattern, plus 20 correct plain sentences."""
    sentences = [pattern_sentence] * 6 + [plain_sentence] * 20 + [plain_sentence] * 2
    labels = [0] * 6 + [1] * 20 + [1] * 2
    probs = [0.7] * 6 + [0.8] * 20 + [0.4] * 2  # 6 FP with the pattern, 2 plain FN
    return analyze_errors(sentences, labels, probs)


def test_suggestions_follow_the_dominant_pattern() -> None:
    plain = "a solid , well paced piece of filmmaking from a first time director"
    neg = _analysis_with_dominant("the script does n't make a lot of sense in the end", plain)
    contrast = _analysis_with_dominant("the script is tight although the ending drags on", plain)
    assert neg.suggestions[0].startswith("negation appears in 75% of errors (error rate 100% vs")
    assert "negation-rich training data" in neg.suggestions[0]
    assert contrast.suggestions[0].startswith("contrast appears in 75% of errors")
    assert "mixed-sentiment" in contrast.suggestions[0]
    assert not any(s.startswith("negation") for s in contrast.suggestions)
    assert neg.suggestions != contrast.suggestions
    # 6 FP of 6 negatives vs 2 FN of 22 positives: imbalance is reported with its numbers
    assert any("over-predicts positive" in s and "6 FP, 2 FN" in s for s in neg.suggestions)
    assert suggest_improvements(neg) == neg.suggestions


def test_suggestions_say_when_nothing_dominates() -> None:
    sentences = ["a fine film of great depth", "a dull film of no depth", "a warm story"] * 4
    labels = [1, 0, 1] * 4
    probs = [0.9, 0.1, 0.9] * 3 + [0.4, 0.6, 0.3]  # one error of each kind, no pattern in common
    a = analyze_errors(sentences, labels, probs)
    assert a.n_errors == 3
    assert any(s.startswith("No pattern dominates the errors") for s in a.suggestions)


def test_high_confidence_share_is_suggested() -> None:
    sentences = [f"plain sentence number {w} about a movie" for w in "abcdefghij"]
    labels = [0] * 5 + [1] * 5
    probs = [0.99, 0.98, 0.6, 0.1, 0.1, 0.02, 0.9, 0.9, 0.9, 0.9]  # errors 0, 1, 2, 5
    a = analyze_errors(sentences, labels, probs)
    assert any(s.startswith("75% of errors (3) have confidence above 0.90") for s in a.suggestions)


def test_no_errors_gives_zero_counts_and_no_nan() -> None:
    a = analyze_errors(["good", "bad"], [1, 0], [0.9, 0.2])
    assert (a.n_errors, a.false_positives, a.false_negatives) == (0, 0, 0)
    assert a.false_positive_rate == 0.0 and a.false_negative_rate == 0.0
    assert a.errors == [] and a.patterns == [] and a.high_confidence_errors == []
    assert a.confidence_wrong.count == 0 and a.confidence_wrong.mean is None
    assert a.confidence_wrong.histogram == [0] * 10
    assert a.suggestions == ["No errors on 2 sentences: nothing to improve from error analysis."]
    one_class = analyze_errors(["good"], [1], [0.9])
    assert one_class.false_positive_rate is None  # no actual negatives
    empty = analyze_errors([], [], [])
    assert empty.n == 0 and empty.error_rate is None and empty.confidence_correct.median is None
    for result in (a, one_class, empty):
        json.loads(result.model_dump_json())  # strict JSON: would fail on NaN
        assert "NaN" not in result.model_dump_json()


def test_single_error() -> None:
    a = analyze_errors(["not good at all", "great"], [0, 1], [0.8, 0.9])
    assert (a.n_errors, a.false_positives) == (1, 1)
    assert a.errors[0].tags == ["negation", "positive_words_in_negative_context", "very_short"]
    assert a.confidence_wrong.median == pytest.approx(0.8)
    top = a.patterns[0]
    assert (top.count, top.share_of_errors) == (1, 1.0)
    assert len(a.suggestions) >= 1  # one error is below min_count: says nothing dominates
    assert a.suggestions[0].startswith("No pattern dominates")


def test_bad_inputs_fail_loudly() -> None:
    with pytest.raises(ValueError, match="sentences, labels and prob_positive"):
        analyze_errors(["a", "b"], [0, 1], [0.5])
    with pytest.raises(ValueError, match="labels"):
        analyze_errors(["a"], [2], [0.5])
    with pytest.raises(ValueError, match="prob_positive"):
        analyze_errors(["a"], [1], [float("nan")])
    with pytest.raises(ValueError, match="high_confidence"):
        analyze_errors(["a"], [1], [0.5], high_confidence=1.2)
