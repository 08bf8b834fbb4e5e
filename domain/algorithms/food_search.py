"""Food search as people type: folding, typo correction against the catalogue's words, and the final ranking.

Pure. PostgreSQL does the retrieval (a GIN index over each food's weighted ``tsvector``: core full-text search,
present in every PostgreSQL, where the trigram and unaccent extensions are not); this module turns what the
athlete typed into that index's query (every word matched, the last one as a prefix while typing, misspelt
words replaced by the nearest words the catalogue uses) and orders the candidates it returns the way people
expect: the food *named* by the words first ("Bananas, raw" before "Bread, banana"), plain before prepared.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import OSA

_NOT_WORD = re.compile(r"[^a-z0-9]+")
#: Words the English text-search configuration drops; a query made only of them would match nothing.
STOP_WORDS = frozenset({"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to",
                        "with", "without", "w", "s"})
MAX_QUERY_WORDS = 8
#: Words people add when they mean the plain food: a name that says "raw" wins over "cooked" when unasked.
PLAIN_WORDS = frozenset({"raw", "fresh", "plain", "whole"})


def fold(text: str) -> str:
    """Lower case ASCII words separated by single spaces: "Crème brûlée, 2%" → "creme brulee 2"."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(_NOT_WORD.split(ascii_text)).strip()


#: Catalogue names that begin with a category ("Beverages, coffee, brewed"): the food is named by what follows.
CATEGORY_HEADS = frozenset({
    "beverages", "alcoholic beverage", "babyfood", "fast foods", "spices", "snacks", "candies", "soup",
    "cereals ready to eat", "restaurant", "infant formula", "sauce", "fish", "game meat", "leavening agents",
    "sweeteners", "salad dressing", "dessert topping", "frozen novelties", "formulated bar", "crustaceans",
    "mollusks", "cereals", "fruit juice", "school lunch", "vegetable juice", "nuts", "seeds",
})


def split_name(name: str) -> tuple[str, str]:
    """(head, rest) of a food's name for indexing: the head is what the food *is* ("Bananas" in "Bananas,
    raw"; "coffee" in "Beverages, coffee, brewed", whose category goes with the rest); the rest describes it.
    Brands and other names are indexed apart (``fold`` them), weighing less."""
    parts = name.split(",")
    if len(parts) > 2 and fold(parts[0]) in CATEGORY_HEADS:
        return fold(parts[1]), fold(f"{parts[0]} {','.join(parts[2:])}")
    return fold(parts[0]), fold(",".join(parts[1:]))


@dataclass
class Vocabulary:
    """The words of the catalogue with how many foods use each (for choosing between equally near words)."""

    counts: Mapping[str, int]
    words: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.words = sorted(self.counts)

    def __contains__(self, word: object) -> bool:
        return word in self.counts

    def has_prefix(self, prefix: str) -> bool:
        i = bisect.bisect_left(self.words, prefix)
        return i < len(self.words) and self.words[i].startswith(prefix)

    def corrections(self, word: str, limit: int = 3) -> list[str]:
        """The catalogue's words nearest to a misspelt one (edits incl. swapped letters: 1 for words of up to
        5 letters, 2 beyond; none under 4 letters, where one edit reaches too many words)."""
        if len(word) < 4 or word.isdigit():
            return []
        max_edits = 1 if len(word) <= 5 else 2
        found = process.extract(word, self.words, scorer=OSA.distance, score_cutoff=max_edits, limit=50)
        if not found:
            return []
        best = min(score for _, score, _ in found)
        nearest = [w for w, score, _ in found if score == best]
        return sorted(nearest, key=lambda w: -self.counts[w])[:limit]


def vocabulary_of(texts: Iterable[str]) -> Vocabulary:
    counts: dict[str, int] = {}
    for text in texts:
        for word in set(text.split()):
            if len(word) > 1 and not word.isdigit():
                counts[word] = counts.get(word, 0) + 1
    return Vocabulary(counts)


@dataclass(frozen=True)
class Term:
    typed: str
    #: Words to search for this term (the typed one and/or its corrections).
    alternatives: tuple[str, ...]
    prefix: bool


def plan(query: str, vocabulary: Vocabulary) -> list[Term]:
    """What to look for: each typed word as typed (known to the catalogue or a prefix of its words), else its
    corrections. The last word is a prefix unless the query ends with a space (the athlete finished it)."""
    words = fold(query).split()[:MAX_QUERY_WORDS]
    finished = query[-1:].isspace() or len(words) == MAX_QUERY_WORDS
    kept = [w for w in words if w not in STOP_WORDS] or words
    terms: list[Term] = []
    for i, word in enumerate(kept):
        prefix = i == len(kept) - 1 and not finished
        if word in vocabulary or word.isdigit() or (prefix and vocabulary.has_prefix(word)):
            terms.append(Term(word, (word,), prefix))
            continue
        fixes = vocabulary.corrections(word)
        # An unknown word with no near word may still be in an athlete's own food: keep searching for it.
        terms.append(Term(word, tuple(dict.fromkeys([*fixes, word])) if fixes else (word,), prefix and not fixes))
    return terms


def tsquery(terms: Sequence[Term], *, every: bool = True) -> str:
    """The terms as ``to_tsquery`` text: alternatives OR-ed, terms AND-ed (or OR-ed with ``every=False``, the
    fallback when no food has every word). Only [a-z0-9] reach it, so no operator can be injected."""
    parts = []
    for term in terms:
        alts = [a + (":*" if term.prefix and a == term.typed else "") for a in term.alternatives if a]
        if alts:
            parts.append("(" + " | ".join(alts) + ")")
    return (" & " if every else " | ").join(parts)


def _same_word(alt: str, word: str) -> bool:
    n = max(3, min(len(alt), len(word)) - 1)  # plural and singular: banana / bananas, berry / berries
    return abs(len(alt) - len(word)) <= 3 and alt[:n] == word[:n] and (len(word) <= len(alt) + 3)


def _match(term: Term, word: str) -> float:
    """1 when the word is the term (or its plural), 0.6 when it only starts with what is being typed ("egg"
    in "eggplant"), else 0."""
    best = 0.0
    for alt in term.alternatives:
        if _same_word(alt, word) and not (len(word) > len(alt) + 2 and not word.endswith(("s", "es"))):
            return 1.0
        if term.prefix and alt == term.typed and word.startswith(alt):
            best = 0.6
    return best


@dataclass(frozen=True)
class Candidate:
    id: int
    head: str
    rest: str
    rank: float  # PostgreSQL's ts_rank
    own: bool = False
    extra: str = ""  # brand and other names


def score(terms: Sequence[Term], candidate: Candidate,
          memo: dict[tuple[int, str], float] | None = None) -> float:
    """How well a candidate matches (higher is better). ``memo`` keeps word matches across the candidates of one
    query: the same words ("raw", "cooked") come back in most of them."""
    cache = memo if memo is not None else {}

    def match(i: int, word: str) -> float:
        key = (i, word)
        found = cache.get(key)
        if found is None:
            found = cache[key] = _match(terms[i], word)
        return found

    head_words = candidate.head.split()
    rest_words = candidate.rest.split()
    extra_words = candidate.extra.split()
    value = 0.0
    for i in range(len(terms)):
        in_head = max((match(i, w) for w in head_words), default=0.0)
        in_rest = max((match(i, w) for w in rest_words), default=0.0)
        in_extra = max((match(i, w) for w in extra_words), default=0.0)
        value += max(10.0 * in_head, 4.0 * in_rest, 2.0 * in_extra)
        if head_words and match(i, head_words[0]) == 1.0:
            value += 3.0  # the food is named by a word typed: "Milk, whole" for "whole milk"
        if rest_words and match(i, rest_words[0]) == 1.0:
            value += 1.0  # …and the next word too: "Milk, whole" before "Milk, buttermilk, fluid, whole"
    if head_words and all(any(match(i, w) == 1.0 for i in range(len(terms))) for w in head_words):
        value += 2.0  # every word of the head was typed: "Sugars, granulated" for "sugar", not "Sugar-apples"
    typed = {t.typed for t in terms}
    if not typed & PLAIN_WORDS and PLAIN_WORDS & set(rest_words):
        value += 1.5
    value -= 0.25 * len(head_words) + 0.12 * len(rest_words)  # the fewer other words, the closer the match
    if candidate.own:
        value += 3.0  # an athlete's own foods are what they log again
    return value + candidate.rank


def rank(terms: Sequence[Term], candidates: Iterable[Candidate]) -> list[Candidate]:
    memo: dict[tuple[int, str], float] = {}
    scored = [(-round(score(terms, c, memo), 6), c.id, c) for c in candidates]
    # Ties: the catalogue's order (SR28 numbers the plain form of a food before its variants).
    scored.sort(key=lambda t: (t[0], t[1]))
    return [c for _, _, c in scored]
