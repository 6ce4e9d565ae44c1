"""Error analysis of a binary sentiment classifier: linguistic patterns, confidence, suggestions.

Labels are 0 (negative) and 1 (positive); the model gives P(positive) and predicts positive when
P >= 0.5. The pattern rules are plain functions over one sentence. They are token-aware for
SST-2's lower-cased treebank tokenisation (``it 's``, ``does n't``, ``ca n't``, `` `` title ''``)
and also accept ordinary text (``doesn't`` is split the same way).
"""

import re
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from sentiment_lora.training.data import DECISION_THRESHOLD, LABEL_NAMES

SHORT_MAX_WORDS = 5  # very_short: at most this many words
LONG_MIN_WORDS = 35  # very_long: at least this many words
NEGATION_WINDOW = 5  # a negator at most this many tokens before a positive word negates it
# Fixed histogram bins of the confidence in the predicted class (always in [0.5, 1]).
CONFIDENCE_BIN_EDGES: tuple[float, ...] = tuple(float(x) for x in np.linspace(0.5, 1.0, 11))

_Phrase = tuple[str, ...]

NEGATORS: frozenset[str] = frozenset(
    {
        "not", "n't", "no", "never", "nothing", "none", "nobody", "nowhere", "neither", "nor",
        "cannot", "hardly", "barely", "scarcely", "rarely", "seldom", "without",
        "lacks", "lacking", "lacked", "lack",
    }
)  # fmt: skip
NEGATOR_PHRASES: tuple[_Phrase, ...] = (
    ("fails", "to"), ("failed", "to"), ("fail", "to"), ("falls", "short"), ("fell", "short"),
    ("fall", "short"), ("far", "from"), ("anything", "but"),
)  # fmt: skip
CONTRAST_MARKERS: frozenset[str] = frozenset(
    {
        "but", "however", "although", "though", "yet", "while", "whereas", "despite",
        "nevertheless", "nonetheless", "notwithstanding",
    }
)  # fmt: skip
CONTRAST_PHRASES: tuple[_Phrase, ...] = (
    ("even", "if"), ("even", "though"), ("in", "spite", "of"),
)  # fmt: skip
# Positive words that a bag-of-words model tends to trust even when negated or outweighed.
POSITIVE_WORDS: frozenset[str] = frozenset(
    {
        "good", "great", "best", "better", "fun", "funny", "charming", "charm", "brilliant",
        "excellent", "wonderful", "beautiful", "beautifully", "enjoyable", "entertaining",
        "clever", "witty", "smart", "moving", "touching", "delightful", "nice", "impressive",
        "interesting", "compelling", "engaging", "powerful", "solid", "love", "loved", "lovely",
        "likable", "likeable", "pleasant", "amusing", "hilarious", "masterpiece", "gorgeous",
        "perfect", "remarkable", "memorable", "fresh", "original", "worthwhile", "sweet",
        "warm", "intelligent", "satisfying", "superb", "terrific", "fascinating", "thoughtful",
        "heartfelt", "appealing", "stunning", "exciting", "thrilling", "inventive", "wise",
        "well-made", "well-acted", "well-crafted", "well-written", "entertainment", "genius",
        "laugh", "laughs", "success", "successful", "succeeds", "works",
    }
)  # fmt: skip
# Scare quotes wrap praise or a genre claim ('the `` comedy ''); SST-2's other quotes are titles.
_CLAIM_WORDS = frozenset({"comedy", "thriller", "drama", "horror", "romance", "art", "classic"})
_OPEN_QUOTES = frozenset({"``", "`", '"'})
_CLOSE_QUOTES = frozenset({"''", "'", '"'})
_IRONY_PHRASES: tuple[_Phrase, ...] = (
    ("supposed", "to"), ("so-called",), ("so", "called"), ("would-be",), ("oh",),
    ("yeah", "right"), ("yeah", ",", "right"), ("!",), ("?",),
)  # fmt: skip

_TOKEN = re.compile(r"``|''|n't|'(?:s|re|ve|ll|d|m)\b|[a-z0-9]+(?:-[a-z0-9]+)*|\S")
_WORD = re.compile(r"[a-z0-9]")


def tokenize(sentence: str) -> list[str]:
    """Lower-cased treebank-style tokens; ``doesn't`` -> ``does n't``, ``it's`` -> ``it 's``.

    >>> tokenize("It doesn't work , `` oh '' !")
    ['it', 'does', "n't", 'work', ',', '``', 'oh', "''", '!']
    """
    text = sentence.lower().replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"(?<=[a-z])n't\b", " n't", text)
    text = re.sub(r"(?<=[a-z])'(s|re|ve|ll|d|m)\b", r" '\1", text)
    return _TOKEN.findall(text)


def count_words(sentence: str) -> int:
    """Tokens that hold a letter or digit (punctuation such as ``,`` and ``.`` does not count)."""
    return sum(1 for tok in tokenize(sentence) if _WORD.search(tok))


def _phrase_starts(tokens: list[str], phrases: Sequence[_Phrase]) -> list[tuple[int, int]]:
    """(start, end) spans where any phrase occurs in ``tokens``."""
    spans = []
    for phrase in phrases:
        size = len(phrase)
        spans += [
            (i, i + size)
            for i in range(len(tokens) - size + 1)
            if tuple(tokens[i : i + size]) == phrase
        ]
    return spans


def _negator_spans(tokens: list[str]) -> list[tuple[int, int]]:
    spans = [
        (i, i + 1)
        for i, tok in enumerate(tokens)
        if tok in NEGATORS and not (tok == "not" and tokens[i + 1 : i + 2] == ["only"])
    ]
    return spans + _phrase_starts(tokens, NEGATOR_PHRASES)


def _is_contrast(tokens: list[str], i: int) -> bool:
    """Whether ``tokens[i]`` (a contrast marker) is used as one, not e.g. 'a while', 'yet again'."""
    tok, prev = tokens[i], tokens[i - 1] if i > 0 else ""
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    if tok == "but":
        return prev not in {"anything", "all"} and nxt != "also"
    if tok == "while":
        return prev not in {"a", "worth", "the"}
    if tok == "yet":
        return prev not in {"as", "not", "n't"} and nxt not in {"another", "again"}
    if tok == "though":
        return prev != "as"
    return True


def _contrast_spans(tokens: list[str]) -> list[tuple[int, int]]:
    spans = [
        (i, i + 1)
        for i, tok in enumerate(tokens)
        if tok in CONTRAST_MARKERS and _is_contrast(tokens, i)
    ]
    return spans + _phrase_starts(tokens, CONTRAST_PHRASES)


def has_negation(sentence: str) -> bool:
    """Explicit or subtle negation: not, n't, no, never, nothing, without, fails to, lacks...

    'not only' is not counted.

    >>> has_negation("it 's not a bad film"), has_negation("the film lacks charm")
    (True, True)
    """
    return bool(_negator_spans(tokenize(sentence)))


def has_contrast(sentence: str) -> bool:
    """A contrast marker (but, however, although, yet, while, despite, even if...): mixed sentiment.

    Non-contrastive uses are skipped: 'a while', 'yet another', 'as though', 'anything but',
    'not only ... but also'.

    >>> has_contrast("the acting is good but the plot is a mess")
    True
    """
    return bool(_contrast_spans(tokenize(sentence)))


def has_positive_word_in_negative_context(sentence: str) -> bool:
    """A positive word (good, great, fun, charming...) that is negated or outweighed.

    Negated: a negator at most :data:`NEGATION_WINDOW` tokens before it ('is n't very funny',
    'fails to be charming'). Outweighed: the sentence also has a contrast marker.

    >>> has_positive_word_in_negative_context("it 's not very funny")
    True
    """
    tokens = tokenize(sentence)
    positive = [i for i, tok in enumerate(tokens) if tok in POSITIVE_WORDS]
    if not positive:
        return False
    if _contrast_spans(tokens):
        return True
    negator_ends = [end for _, end in _negator_spans(tokens)]
    return any(0 <= i - end < NEGATION_WINDOW for i in positive for end in negator_ends)


def _has_scare_quotes(tokens: list[str]) -> bool:
    """A quoted span of one to three words holding praise or a genre claim."""
    evaluative = POSITIVE_WORDS | _CLAIM_WORDS
    for i, tok in enumerate(tokens):
        if tok not in _OPEN_QUOTES:
            continue
        for j in range(i + 2, min(i + 5, len(tokens))):
            if tokens[j] in _CLOSE_QUOTES:
                if any(t in evaluative for t in tokens[i + 1 : j]):
                    return True
                break
    return False


def has_irony_markers(sentence: str) -> bool:
    """Lexical cues of irony: 'supposed to', 'so-called', 'would-be', 'oh', 'yeah right', '!',
    '?', and scare quotes around praise or a genre claim (`` hilarious '', `` comedy '').

    Quotes around other words are titles in SST-2 and do not count. These are weak cues.

    >>> has_irony_markers("it 's supposed to be a comedy"), has_irony_markers("a fine film .")
    (True, False)
    """
    tokens = tokenize(sentence)
    return bool(_phrase_starts(tokens, _IRONY_PHRASES)) or _has_scare_quotes(tokens)


def is_very_short(sentence: str) -> bool:
    """At most :data:`SHORT_MAX_WORDS` words (see :func:`count_words`)."""
    return count_words(sentence) <= SHORT_MAX_WORDS


def is_very_long(sentence: str) -> bool:
    """At least :data:`LONG_MIN_WORDS` words (see :func:`count_words`)."""
    return count_words(sentence) >= LONG_MIN_WORDS


PATTERNS: dict[str, Callable[[str], bool]] = {
    "negation": has_negation,
    "contrast": has_contrast,
    "positive_words_in_negative_context": has_positive_word_in_negative_context,
    "irony_markers": has_irony_markers,
    "very_short": is_very_short,
    "very_long": is_very_long,
}
PATTERN_DESCRIPTIONS: dict[str, str] = {
    "negation": "negation (not, n't, no, never, nothing, without, fails to, lacks ...)",
    "contrast": "contrast marker (but, however, although, yet, while, despite ...): mixed "
    "sentiment",
    "positive_words_in_negative_context": "a positive word (good, fun, charming ...) that is "
    "negated or outweighed by a contrast",
    "irony_markers": "irony cues (supposed to, so-called, oh, yeah right, !, ?, scare quotes)",
    "very_short": f"very short sentence (<= {SHORT_MAX_WORDS} words)",
    "very_long": f"very long sentence (>= {LONG_MIN_WORDS} words)",
}


def tag_patterns(sentence: str) -> list[str]:
    """Every pattern in :data:`PATTERNS` that ``sentence`` matches, in registry order.

    >>> tag_patterns("the acting is good but the plot is a mess")
    ['contrast', 'positive_words_in_negative_context']
    """
    return [name for name, rule in PATTERNS.items() if rule(sentence)]


class ErrorExample(BaseModel):
    """One misclassified sentence; ``confidence`` is the probability of the predicted class."""

    model_config = ConfigDict(frozen=True)
    index: int
    sentence: str
    label: str
    predicted: str
    confidence: float
    tags: list[str]


class PatternSummary(BaseModel):
    """How often a pattern occurs among the errors and how error-prone it makes a sentence."""

    model_config = ConfigDict(frozen=True)
    name: str
    description: str
    count: int  # errors with the tag
    share_of_errors: float  # count / all errors
    error_rate: float | None  # count / all sentences with the tag; None if no sentence has it
    examples: list[str]


class ConfidenceSummary(BaseModel):
    """Distribution of the confidence in the predicted class over a group of predictions."""

    model_config = ConfigDict(frozen=True)
    count: int
    mean: float | None
    median: float | None
    histogram: list[int]  # counts per bin of CONFIDENCE_BIN_EDGES


class ErrorAnalysis(BaseModel):
    """Errors of one model on one labelled set: counts, confidence, patterns and suggestions."""

    model_config = ConfigDict(frozen=True)
    n: int
    n_errors: int
    error_rate: float | None  # n_errors / n; None when n == 0
    false_positives: int
    false_negatives: int
    false_positive_rate: float | None  # FP / actual negatives
    false_negative_rate: float | None  # FN / actual positives
    confidence_correct: ConfidenceSummary
    confidence_wrong: ConfidenceSummary
    high_confidence_threshold: float
    high_confidence_errors: list[ErrorExample]  # confidence > threshold, most confident first
    patterns: list[PatternSummary]  # by count, descending; empty when there are no errors
    errors: list[ErrorExample]  # input order
    suggestions: list[str]


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _confidence_summary(confidence: np.ndarray) -> ConfidenceSummary:
    histogram, _ = np.histogram(confidence, bins=np.asarray(CONFIDENCE_BIN_EDGES))
    empty = len(confidence) == 0
    return ConfidenceSummary(
        count=len(confidence),
        mean=None if empty else float(np.mean(confidence)),
        median=None if empty else float(np.median(confidence)),
        histogram=[int(c) for c in histogram],
    )


def analyze_errors(
    sentences: Sequence[str],
    labels: Sequence[int],
    prob_positive: Sequence[float],
    *,
    high_confidence: float = 0.9,
    max_examples: int = 5,
) -> ErrorAnalysis:
    """Find, tag and summarise the misclassified sentences; the prediction is P >= 0.5.

    ``high_confidence_errors`` are the errors whose confidence is strictly above
    ``high_confidence``. Every rate whose denominator is zero is None (never NaN).

    >>> a = analyze_errors(["good", "not good", "bad"], [1, 0, 0], [0.9, 0.8, 0.1])
    >>> a.n_errors, a.false_positives, a.errors[0].tags
    (1, 1, ['negation', 'positive_words_in_negative_context', 'very_short'])
    """
    sentences = list(sentences)
    y = np.asarray(labels)
    p = np.asarray(prob_positive, dtype=float)
    if not (len(sentences) == len(y) == len(p)) or y.ndim != 1 or p.ndim != 1:
        raise ValueError(
            "sentences, labels and prob_positive must be 1-D of equal length, got "
            f"{len(sentences)}, {y.shape} and {p.shape}"
        )
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels: must be 0 (negative) or 1 (positive)")
    if not (np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()):
        raise ValueError("prob_positive: must be finite probabilities in [0, 1]")
    if not 0.5 <= high_confidence < 1:
        raise ValueError(f"high_confidence: must be in [0.5, 1), got {high_confidence}")
    if max_examples < 0:
        raise ValueError(f"max_examples: must be >= 0, got {max_examples}")

    y = y.astype(int)
    pred = (p >= DECISION_THRESHOLD).astype(int)
    confidence = np.where(pred == 1, p, 1 - p)
    wrong = pred != y
    tags = [tag_patterns(s) for s in sentences]
    errors = [
        ErrorExample(
            index=i,
            sentence=sentences[i],
            label=LABEL_NAMES[y[i]],
            predicted=LABEL_NAMES[pred[i]],
            confidence=float(confidence[i]),
            tags=tags[i],
        )
        for i in np.flatnonzero(wrong)
    ]
    n_errors = len(errors)
    fp = int(np.sum(wrong & (y == 0)))
    fn = int(np.sum(wrong & (y == 1)))

    patterns = []
    if n_errors:
        for name in PATTERNS:
            tagged = [e for e in errors if name in e.tags]
            with_tag = sum(1 for t in tags if name in t)
            patterns.append(
                PatternSummary(
                    name=name,
                    description=PATTERN_DESCRIPTIONS[name],
                    count=len(tagged),
                    share_of_errors=len(tagged) / n_errors,
                    error_rate=_ratio(len(tagged), with_tag),
                    examples=[e.sentence for e in tagged[:max_examples]],
                )
            )
        patterns.sort(key=lambda s: -s.count)  # stable: ties keep registry order

    high = sorted(
        (e for e in errors if e.confidence > high_confidence),
        key=lambda e: (-e.confidence, e.index),
    )
    analysis = ErrorAnalysis(
        n=len(y),
        n_errors=n_errors,
        error_rate=_ratio(n_errors, len(y)),
        false_positives=fp,
        false_negatives=fn,
        false_positive_rate=_ratio(fp, int(np.sum(y == 0))),
        false_negative_rate=_ratio(fn, int(np.sum(y == 1))),
        confidence_correct=_confidence_summary(confidence[~wrong]),
        confidence_wrong=_confidence_summary(confidence[wrong]),
        high_confidence_threshold=high_confidence,
        high_confidence_errors=high,
        patterns=patterns,
        errors=errors,
        suggestions=[],
    )
    return analysis.model_copy(update={"suggestions": suggest_improvements(analysis)})


# What to do when a pattern dominates the errors.
PATTERN_ADVICE: dict[str, str] = {
    "negation": "add negation-rich training data or contrastive minimal pairs "
    "('good' / 'not good', 'boring' / 'never boring')",
    "contrast": "add mixed-sentiment examples where the clause after the contrast marker "
    "decides the label, or weight that clause",
    "positive_words_in_negative_context": "the model trusts positive words: add counter-examples "
    "where they are negated or outweighed ('not funny', 'a good cast but ...')",
    "irony_markers": "irony and sarcasm mislead lexical cues: add labelled ironic examples or "
    "use a larger pretrained encoder",
    "very_short": "short sentences carry little context: review their labels for noise and add "
    "short labelled phrases (SST-2 phrase-level data)",
    "very_long": "long sentences: check truncation (max_length) and consider a larger model or "
    "more long training examples",
}


def suggest_improvements(
    analysis: ErrorAnalysis,
    *,
    min_share: float = 0.2,
    min_lift: float = 1.2,
    min_count: int = 3,
) -> list[str]:
    """Concrete next steps derived from which patterns dominate the errors, with the numbers.

    A pattern dominates when at least ``min_count`` errors and ``min_share`` of all errors carry
    it and its error rate is at least ``min_lift`` times the overall error rate (common patterns
    that are not error-prone do not count). Also flags an FP/FN imbalance and a large share of
    high-confidence errors. Says so when nothing dominates.
    """
    if analysis.n_errors == 0:
        return [f"No errors on {analysis.n} sentences: nothing to improve from error analysis."]
    overall = analysis.error_rate or 0.0
    out = []
    dominant = [
        s
        for s in analysis.patterns
        if s.count >= min_count
        and s.share_of_errors >= min_share
        and s.error_rate is not None
        and s.error_rate >= min_lift * overall
    ]
    for s in sorted(dominant, key=lambda s: -s.share_of_errors):
        out.append(
            f"{s.name} appears in {s.share_of_errors:.0%} of errors (error rate "
            f"{s.error_rate:.0%} vs {overall:.0%} overall): {PATTERN_ADVICE[s.name]}"
        )
    if not dominant:
        top = analysis.patterns[0]
        rate = "n/a" if top.error_rate is None else f"{top.error_rate:.0%}"
        out.append(
            f"No pattern dominates the errors (most frequent: {top.name} in "
            f"{top.share_of_errors:.0%} of errors, error rate {rate} vs {overall:.0%} overall): "
            "the errors look diffuse; more training data or a larger model is the general remedy"
        )

    fpr, fnr = analysis.false_positive_rate, analysis.false_negative_rate
    if fpr is not None and fnr is not None and abs(fpr - fnr) >= 0.03:
        hi, lo = max(fpr, fnr), min(fpr, fnr)
        if hi >= 1.5 * lo:
            side, kind = (
                ("positive", "false positive") if fpr > fnr else ("negative", "false negative")
            )
            out.append(
                f"the model over-predicts {side} ({kind} rate {hi:.0%} vs {lo:.0%}; "
                f"{analysis.false_positives} FP, {analysis.false_negatives} FN): tune the decision "
                "threshold on validation data or rebalance the training classes"
            )

    n_high = len(analysis.high_confidence_errors)
    share_high = n_high / analysis.n_errors
    if n_high >= min_count and share_high >= 0.25:
        out.append(
            f"{share_high:.0%} of errors ({n_high}) have confidence above "
            f"{analysis.high_confidence_threshold:.2f}: the model is over-confident; calibrate it "
            "(temperature scaling) and review these sentences for label noise"
        )
    return out
