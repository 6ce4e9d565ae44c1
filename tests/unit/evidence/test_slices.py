"""Champion against challenger per slice: hand-worked McNemar tables, Holm, bucket edges."""

import pytest
from scipy.stats import binomtest
from statsmodels.stats.multitest import multipletests

from sentiment_lora.evidence.error_analysis import PATTERNS, count_words, tag_patterns
from sentiment_lora.evidence.slices import (
    CONFIDENCE_BUCKETS,
    LENGTH_BUCKETS,
    MIN_SLICE_SIZE,
    SliceComparison,
    compare_slices,
    confidence_bucket,
    length_bucket,
    slice_gate_reasons,
)

NEG_SHORT = "the story is not there at all"  # 7 words: negation
NEG_MEDIUM = "the story is not there at all and the cast stays in the dark"  # 14: negation
CONTRAST_MEDIUM = "the story moves slowly but the cast stays in the same room for hours"  # 14
PLAIN_SHORT = "the story moves along at a steady pace"  # 8 words, no tag
PLAIN_LONG = " ".join([PLAIN_SHORT] * 3)  # 24 words
PLAIN_VERY_LONG = " ".join([PLAIN_SHORT] * 4)  # 32 words (very_long starts at 35)

Block = tuple[
    str, int, int, int, int
]  # sentence, both right, challenger only, champion only, neither


def _data(blocks: list[Block]) -> tuple[list[str], list[int], list[int], list[int]]:
    """Sentences, labels, champion and challenger predictions with the given correctness."""
    sentences, labels, champion, challenger = [], [], [], []
    for sentence, both, chall_only, champ_only, neither in blocks:
        pairs = (
            [(True, True)] * both
            + [(False, True)] * chall_only
            + [(True, False)] * champ_only
            + [(False, False)] * neither
        )
        for champ_right, chall_right in pairs:
            label = len(labels) % 2  # both classes occur
            sentences.append(sentence)
            labels.append(label)
            champion.append(label if champ_right else 1 - label)
            challenger.append(label if chall_right else 1 - label)
    return sentences, labels, champion, challenger


HAND_BLOCKS: list[Block] = [
    (NEG_SHORT, 5, 0, 6, 1),
    (NEG_MEDIUM, 4, 1, 2, 1),
    (CONTRAST_MEDIUM, 6, 3, 0, 1),
    (PLAIN_LONG, 8, 4, 0, 0),
    (PLAIN_VERY_LONG, 2, 1, 1, 0),
    (PLAIN_SHORT, 3, 0, 0, 0),
]
# Tables with A = challenger, B = champion: [[both, challenger only], [champion only, neither]].
HAND_TABLES = {
    "negation": [[9, 1], [8, 2]],  # blocks 1 + 2
    "contrast": [[6, 3], [0, 1]],  # block 3: exactly MIN_SLICE_SIZE sentences, tested
    "length <=10": [[8, 0], [6, 1]],  # blocks 1 + 6
    "length 11-20": [[10, 4], [2, 2]],  # blocks 2 + 3
    "length 21-30": [[8, 4], [0, 0]],  # block 4
}
# Exact two-sided binomial p-values, 2 * P(X <= min(b, c) | b + c, 1/2), worked by hand.
HAND_PVALUES = {
    "negation": 2 * (1 + 9) / 2**9,
    "contrast": 2 * 1 / 2**3,
    "length <=10": 2 * 1 / 2**6,
    "length 11-20": 2 * (1 + 6 + 15) / 2**6,
    "length 21-30": 2 * 1 / 2**4,
}


def test_fixture_sentences_have_the_intended_tags_and_lengths() -> None:
    assert tag_patterns(NEG_SHORT) == tag_patterns(NEG_MEDIUM) == ["negation"]
    assert tag_patterns(CONTRAST_MEDIUM) == ["contrast"]
    assert tag_patterns(PLAIN_SHORT) == tag_patterns(PLAIN_LONG) == []
    assert tag_patterns(PLAIN_VERY_LONG) == []
    assert [count_words(s) for s in (NEG_SHORT, NEG_MEDIUM, PLAIN_LONG, PLAIN_VERY_LONG)] == [
        7,
        14,
        24,
        32,
    ]


def test_hand_case_tables_pvalues_and_holm() -> None:
    c = compare_slices(*_data(HAND_BLOCKS))
    by_name = {s.name: s for s in c.slices}
    tested = [s.name for s in c.slices if s.mcnemar is not None]
    assert tested == list(HAND_TABLES)
    for name, table in HAND_TABLES.items():
        s = by_name[name]
        assert s.mcnemar is not None
        assert s.mcnemar.table == table, name
        assert s.mcnemar.method == "exact-binomial"
        assert s.mcnemar.pvalue == pytest.approx(HAND_PVALUES[name]), name
        b, c_ = table[0][1], table[1][0]
        assert s.mcnemar.pvalue == pytest.approx(binomtest(b, b + c_, 0.5).pvalue), name
    expected_holm = multipletests(list(HAND_PVALUES.values()), method="holm")[1]
    for name, p_holm in zip(HAND_PVALUES, expected_holm, strict=True):
        assert by_name[name].pvalue_holm == pytest.approx(p_holm), name
    # by hand: 5 * 1/32 = 4 * 5/128 = 0.15625, then 3 * 1/8, 2 * 1/4, max(0.6875, 0.5)
    assert [by_name[n].pvalue_holm for n in HAND_PVALUES] == pytest.approx(
        [0.15625, 0.5, 0.15625, 0.6875, 0.375]
    )
    neg = by_name["negation"]
    assert (neg.n, neg.champion_accuracy, neg.challenger_accuracy) == (20, 0.85, 0.5)
    assert neg.difference == pytest.approx(-0.35)
    assert all(by_name[n].verdict == "not distinguishable" for n in HAND_TABLES)
    assert c.regressions == c.improvements == []
    assert not c.blocks_promotion
    assert slice_gate_reasons(c) == []
    assert "neither significantly better nor worse" in c.summary


def test_small_slices_are_listed_but_not_tested() -> None:
    c = compare_slices(*_data(HAND_BLOCKS))
    names = [s.name for s in c.slices]
    assert names == list(PATTERNS) + list(LENGTH_BUCKETS)  # no probabilities: no confidence
    for s in c.slices:
        if s.name in HAND_TABLES:
            assert s.reason is None
            continue
        assert s.n < MIN_SLICE_SIZE
        assert s.mcnemar is None and s.pvalue_holm is None
        assert s.verdict == "too few"
        assert s.reason is not None and f"only {s.n} sentences" in s.reason
    very_long = {s.name: s for s in c.slices}["length >30"]
    assert (very_long.n, very_long.champion_accuracy, very_long.challenger_accuracy) == (
        4,
        0.75,
        0.75,
    )
    irony = {s.name: s for s in c.slices}["irony_markers"]
    assert irony.n == 0 and irony.champion_accuracy is None and irony.difference is None
    # raising the threshold above the contrast slice's 10 sentences leaves it untested
    c11 = compare_slices(*_data(HAND_BLOCKS), min_slice_size=11)
    assert {s.name: s for s in c11.slices}["contrast"].verdict == "too few"


def test_better_overall_but_worse_on_negation_is_a_regression() -> None:
    blocks: list[Block] = [
        (NEG_SHORT, 0, 0, 40, 0),  # champion right on every negation, challenger wrong
        (PLAIN_SHORT, 55, 40, 5, 0),
        (PLAIN_LONG, 55, 40, 5, 0),
    ]
    c = compare_slices(*_data(blocks))
    assert c.challenger_accuracy > c.champion_accuracy + 0.1  # 190/240 vs 160/240
    neg = {s.name: s for s in c.slices}["negation"]
    assert neg.verdict == "worse"
    assert neg.pvalue_holm is not None and neg.pvalue_holm < c.alpha
    assert c.regressions == ["negation"]
    assert c.improvements == ["length 21-30"]
    assert {s.name: s for s in c.slices}["length <=10"].verdict == "not distinguishable"
    assert c.blocks_promotion
    reasons = slice_gate_reasons(c)
    assert len(reasons) == 1
    assert reasons[0].startswith("slice 'negation' regressed: accuracy 1.00 -> 0.00 (n = 40)")
    assert "negation" in c.summary and "length 21-30" in c.summary
    # the model round-trips through JSON (blocks_promotion is derived, not stored)
    assert SliceComparison.model_validate_json(c.model_dump_json()) == c


@pytest.mark.parametrize(
    ("n_words", "bucket"),
    [(0, 0), (1, 0), (10, 0), (11, 1), (20, 1), (21, 2), (30, 2), (31, 3), (200, 3)],
)
def test_length_bucket_edges(n_words: int, bucket: int) -> None:
    assert length_bucket(n_words) == LENGTH_BUCKETS[bucket]


@pytest.mark.parametrize(
    ("p", "bucket"),
    [
        (0.5, 0),
        (0.69, 0),
        (0.31, 0),
        (0.7, 1),
        (0.3, 1),
        (0.89, 1),
        (0.9, 2),
        (0.1, 2),
        (1.0, 2),
        (0.0, 2),
    ],
)
def test_confidence_bucket_edges(p: float, bucket: int) -> None:
    assert confidence_bucket(p) == CONFIDENCE_BUCKETS[bucket]


def test_confidence_slices_only_with_champion_probabilities() -> None:
    sentences = [PLAIN_SHORT] * 30
    labels = [1] * 30
    probs = [0.6] * 10 + [0.3] * 12 + [0.95] * 8  # predictions 1, 0, 1
    champion = [1] * 10 + [0] * 12 + [1] * 8
    challenger = [1] * 30
    c = compare_slices(sentences, labels, champion, challenger, champion_prob_positive=probs)
    conf = [s for s in c.slices if s.kind == "confidence"]
    assert [s.name for s in conf] == list(CONFIDENCE_BUCKETS)
    assert [s.n for s in conf] == [10, 12, 8]
    assert [s.verdict for s in conf] == ["not distinguishable", "better", "too few"]
    assert conf[1].mcnemar is not None and conf[1].mcnemar.table == [[0, 12], [0, 0]]
    # hard predictions given as 0.0/1.0 floats are accepted; no probabilities, no confidence
    hard = compare_slices(sentences, labels, [float(x) for x in champion], challenger)
    assert not [s for s in hard.slices if s.kind == "confidence"]


def test_invalid_inputs_raise() -> None:
    s, y, a, b = _data(HAND_BLOCKS)
    with pytest.raises(ValueError, match="equal length"):
        compare_slices(s, y, a, b[:-1])
    with pytest.raises(ValueError, match="challenger_predictions"):
        compare_slices(s, y, a, [0.7] * len(b))
    with pytest.raises(ValueError, match="alpha"):
        compare_slices(s, y, a, b, alpha=1.5)
    with pytest.raises(ValueError, match="disagrees"):
        compare_slices(s, y, a, b, champion_prob_positive=[0.9] * len(a))
    with pytest.raises(ValueError, match="empty"):
        compare_slices([], [], [], [])
    with pytest.raises(ValueError, match="prob_positive"):
        confidence_bucket(1.2)
    with pytest.raises(ValueError, match="n_words"):
        length_bucket(-1)


def test_a_sentence_is_in_every_slice_of_its_tags() -> None:
    sentence = "not bad at all"  # negation and very_short, <= 10 words
    assert tag_patterns(sentence) == ["negation", "very_short"]
    c = compare_slices([sentence] * 12, [1] * 12, [1] * 12, [0] * 12)
    sizes = {s.name: s.n for s in c.slices}
    assert (sizes["negation"], sizes["very_short"], sizes["length <=10"]) == (12, 12, 12)
    assert sizes["contrast"] == 0
    assert c.regressions == ["negation", "very_short", "length <=10"]
