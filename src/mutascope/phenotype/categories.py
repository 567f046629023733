"""What kind of text an output is: a small, documented, rule-based classifier.

The paper labelled NSM outputs by hand as poem, dialogue, first-person
narrative or other. Labelling by hand does not scale to millions of mutants
and a learned classifier would be a second model to trust, so the project
uses fixed rules that anyone can read, test and argue with. The rules look
only at the surface of the text (lines, markers, pronouns, repetition), so
they are fast enough to run on every distinct output and give the same label
on every machine.

Categories, tried in this order; the first rule that matches wins:

``empty``
    nothing visible: the empty string or only whitespace.
``degenerate repetition``
    the output is stuck in a loop: a unit of 1-12 words repeated back to back
    at least 3 times covers at least half of the words; or 40 % of the words
    repeat an 8-word run seen earlier (a long passage said again); or, for
    text of at most 3 words, one unit of up to 8 characters repeated at least
    4 times covers at least 80 % of the characters. Numbers are compared as "0", so "1. fly 2. fly 3. fly"
    loops too. Repetition wins over every other category because a looping
    model is the phenotype, whatever it loops on (a code line repeated ten
    times is degenerate, a real code listing whose ``}`` lines repeat is code).
``code``
    a fenced ``` block, or at least two lines carrying code syntax (keywords
    such as ``def``/``for (``/``return``/``#include``, lines ending in ``;``,
    ``{`` or ``):``, assignments, ``}``) that make up at least a third of the
    non-blank lines, one of them a keyword. Tried before ``non-text`` because
    code is symbol-heavy.
``non-text``
    garbled: fewer than half of the non-space characters are letters, or
    control/replacement characters make up 10 % or more, or most of 3+
    Latin words have no vowel ("xkcd qzv prrt").
``list``
    at least two lines that start with an item marker (``-``, ``*``, bullets,
    ``1.``, ``2)``, ``a.``), or an inline run ``1. ... 2. ...``.
``dialogue``
    speaker turns: at least two lines ``Name: text`` with at least two
    different speakers (``User:``/``Assistant:``, ``Q:``/``A:``), or at least
    two quoted utterances together with a speech verb (said, asked, replied).
``poem``
    at least three non-blank short lines (median 3-12 words, none longer than
    80 characters) that do not end like prose sentences, or at least two
    short lines whose last words rhyme (share their last three letters).
``first-person narrative``
    at least two first-person singular pronouns (I, me, my, mine, myself and
    their contractions) making up at least 3 % of the words.
``other``
    everything else (ordinary prose, one-line answers).
"""

from __future__ import annotations

import re
import statistics
import unicodedata

__all__ = ["CATEGORIES", "categorize", "first_word"]

CATEGORIES = (
    "empty",
    "degenerate repetition",
    "code",
    "non-text",
    "list",
    "dialogue",
    "poem",
    "first-person narrative",
    "other",
)

# -- repetition ---------------------------------------------------------------

_MAX_UNIT_WORDS = 12


_DIGITS = re.compile(r"\d+")
_NOT_LATIN = re.compile(r"[^A-Za-z]")
_VOWEL = re.compile(r"[aeiouyAEIOUY]")
_NOT_WORD = re.compile(r"[^\w']")


def _normal_word(word: str) -> str:
    return _DIGITS.sub("0", word.lower())


def _longest_loop_coverage(words: list[str]) -> int:
    """Words covered by the longest back-to-back repetition (>= 3 copies) of one unit.

    A stretch where ``words[j] == words[j + k]`` for L consecutive j is a
    k-periodic run of L + k words, i.e. (L + k) // k copies of one unit.
    """
    n = len(words)
    best = 0
    for k in range(1, min(_MAX_UNIT_WORDS, n // 3) + 1):
        run = 0
        for j in range(n - k):
            if words[j] == words[j + k]:
                run += 1
                copies = (run + k) // k
                if copies >= 3:
                    best = max(best, copies * k)
            else:
                run = 0
    return best


def _char_loop(text: str) -> bool:
    """A spaceless string such as ``hahahahaha`` or ``!!!!!!!!``: one unit (<= 8 chars) x >= 4."""
    s = re.sub(r"\s+", "", text)
    if len(s) < 8:
        return False
    for unit in range(1, 9):
        for start in range(0, min(unit, len(s))):
            piece = s[start : start + unit]
            reps = 0
            j = start
            while s[j : j + unit] == piece and j + unit <= len(s):
                reps += 1
                j += unit
            if reps >= 4 and reps * unit >= 0.8 * len(s):
                return True
    return False


_SHINGLE = 8


def _repeated_shingle_coverage(words: list[str]) -> float:
    """Share of words inside an 8-word run that already occurred earlier (a long unit said twice)."""
    seen: set[tuple[str, ...]] = set()
    covered = [False] * len(words)
    for i in range(len(words) - _SHINGLE + 1):
        shingle = tuple(words[i : i + _SHINGLE])
        if shingle in seen:
            covered[i : i + _SHINGLE] = [True] * _SHINGLE
        else:
            seen.add(shingle)
    return sum(covered) / len(words) if words else 0.0


def _is_degenerate(text: str, words: list[str]) -> bool:
    normal = [_normal_word(w) for w in words]
    if len(normal) >= 6 and _longest_loop_coverage(normal) * 2 >= len(normal):
        return True
    if len(normal) >= 2 * _SHINGLE and _repeated_shingle_coverage(normal) >= 0.4:
        return True
    return len(words) <= 3 and _char_loop(text)


# -- code ---------------------------------------------------------------------

_CODE_KEYWORD = re.compile(
    r"^\s*(def |class |import |from \S+ import |#include|package |public |private |protected |static |"
    r"void |int |float |double |bool |boolean |char |String |let |var |const |function |fn |"
    r"return\b|for\s*\(|for \w+ in |while\s*[\(\w]|if\s*\(|elif |else\s*[:{]|\} else|print\(|printf\(|"
    r"System\.out|console\.log|#!/)"
)
_CODE_SYNTAX = re.compile(r"(;\s*$|\{\s*$|^\s*\}|\)\s*:\s*$|^\s*\w[\w\[\]\.]*\s*[+\-*/]?=\s*\S|\w\(.*\)\s*$)")


def _is_code(lines: list[str]) -> bool:
    if any(line.strip().startswith("```") for line in lines):
        return True
    keyword = [bool(_CODE_KEYWORD.search(line)) for line in lines]
    syntax = [k or bool(_CODE_SYNTAX.search(line)) for k, line in zip(keyword, lines)]
    return any(keyword) and sum(syntax) >= 2 and sum(syntax) * 3 >= len(lines)


# -- garbled ------------------------------------------------------------------


def _is_non_text(text: str, words: list[str]) -> bool:
    visible = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    if letters * 2 < len(visible):
        return True
    odd = sum(
        1
        for c in text
        if c == "\ufffd" or (not c.isprintable() and not c.isspace() and unicodedata.category(c) in ("Cc", "Co", "Cn"))
    )
    if odd * 10 >= len(text):
        return True
    latin = [w for w in (_NOT_LATIN.sub("", w) for w in words) if len(w) >= 3]
    if len(latin) >= 3:
        vowelless = sum(1 for w in latin if not _VOWEL.search(w))
        return vowelless * 2 > len(latin)
    return False


# -- structure ----------------------------------------------------------------

_ITEM = re.compile(r"^\s*([-*\u2022\u25cf\u25aa+]\s+|\(?\d{1,3}[.)]\s+|\(?[a-zA-Z][.)]\s+)\S")
_INLINE_ITEMS = re.compile(r"(?:^|\s)1[.)]\s+\S.*?\s2[.)]\s+\S", re.S)
_TURN = re.compile(r"^\s*([A-Z][A-Za-z]{0,19}(?: [A-Z][A-Za-z]{0,19})?)\s*:\s+\S")
_SPEECH_VERB = re.compile(r"\b(said|says|asked|asks|replied|replies|answered|shouted|whispered|exclaimed)\b", re.I)
_QUOTED = re.compile(r"[\"\u201c][^\"\u201c\u201d]{2,}[\"\u201d]")
_FIRST_PERSON = {"i", "i'm", "i've", "i'd", "i'll", "me", "my", "mine", "myself", "im", "ive"}
_SENTENCE_END = re.compile(r"[.!?:;]\s*$")


def _is_list(text: str, lines: list[str]) -> bool:
    return sum(1 for line in lines if _ITEM.match(line)) >= 2 or bool(_INLINE_ITEMS.search(text))


def _is_dialogue(text: str, lines: list[str]) -> bool:
    speakers = [m.group(1) for m in map(_TURN.match, lines) if m]
    if len(speakers) >= 2 and len(set(speakers)) >= 2:
        return True
    return len(_QUOTED.findall(text)) >= 2 and bool(_SPEECH_VERB.search(text))


def _rhymes(a: str, b: str) -> bool:
    a, b = re.sub(r"[^a-z]", "", a.lower()), re.sub(r"[^a-z]", "", b.lower())
    return len(a) >= 3 and len(b) >= 3 and a != b and a[-3:] == b[-3:]


def _is_poem(lines: list[str]) -> bool:
    if len(lines) < 2 or any(len(line.strip()) > 80 for line in lines):
        return False
    counts = [len(line.split()) for line in lines]
    if not 3 <= statistics.median(counts) <= 12:
        return False
    if len(lines) >= 3:
        prose_like = sum(1 for line in lines if _SENTENCE_END.search(line))
        if prose_like * 2 <= len(lines):
            return True
    last = [line.split()[-1] for line in lines]
    return any(_rhymes(a, b) for a, b in zip(last, last[1:]))


def _is_first_person(words: list[str]) -> bool:
    cleaned = [_NOT_WORD.sub("", w.lower().replace("\u2019", "'")) for w in words]
    n = sum(1 for w in cleaned if w in _FIRST_PERSON)
    return n >= 2 and n >= 0.03 * len(words)


def categorize(text: str) -> str:
    """The category of one output (one of :data:`CATEGORIES`); see the module docstring for the rules."""
    if not text or not text.strip():
        return "empty"
    words = text.split()
    lines = [line for line in text.splitlines() if line.strip()]
    if _is_degenerate(text, words):
        return "degenerate repetition"
    if _is_code(lines):
        return "code"
    if _is_non_text(text, words):
        return "non-text"
    if _is_list(text, lines):
        return "list"
    if _is_dialogue(text, lines):
        return "dialogue"
    if _is_poem(lines):
        return "poem"
    if _is_first_person(words):
        return "first-person narrative"
    return "other"


def _strip_punctuation(word: str) -> str:
    start, end = 0, len(word)
    while start < end and not word[start].isalnum():
        start += 1
    while end > start and not word[end - 1].isalnum():
        end -= 1
    return word[start:end]


def first_word(text: str) -> str | None:
    """The output's first word, lower-cased, punctuation stripped (``'"Staring,'`` -> ``staring``).

    The paper grouped "writer" mutations by this word. Tokens that are only
    punctuation (a leading ``-`` or ``"``) are skipped; None when there is no word.
    """
    for token in text.split():
        word = _strip_punctuation(token)
        if word:
            return word.lower()
    return None
