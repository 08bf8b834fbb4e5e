"""Turning what people type into the index's query, and ranking the candidates."""

from __future__ import annotations

from domain.algorithms import food_search as fs


def test_fold_and_split():
    assert fs.fold("Crème Brûlée, 2%") == "creme brulee 2"
    assert fs.split_name("Bananas, raw") == ("bananas", "raw")
    assert fs.split_name("Beverages, coffee, brewed, prepared with tap water") == (
        "coffee", "beverages brewed prepared with tap water")


VOCAB = fs.vocabulary_of(["chicken breast raw", "chicken thigh", "bananas raw", "bread banana", "breast",
                          "beets raw"])


def test_plan_corrects_typos_and_keeps_the_last_word_a_prefix():
    terms = fs.plan("chiken brest", VOCAB)
    assert [t.alternatives for t in terms] == [("chicken", "chiken"), ("breast", "brest")]
    assert fs.tsquery(terms) == "(chicken | chiken) & (breast | brest)"
    typing = fs.plan("chicken bre", VOCAB)
    assert typing[-1].prefix and fs.tsquery(typing) == "(chicken) & (bre:*)"
    assert not fs.plan("chicken bre ", VOCAB)[-1].prefix  # a finished word
    assert fs.plan("banana and", VOCAB)[-1].typed == "banana"  # stop words dropped


def test_nothing_but_letters_and_digits_reach_the_query():
    assert fs.tsquery(fs.plan("x' | !b & c:*)", VOCAB)) == "(x) & (b) & (c:*)"


def test_ranking_prefers_the_food_named_by_the_words():
    terms = fs.plan("banana", VOCAB)
    raw = fs.Candidate(1, "bananas", "raw", 0.1)
    bread = fs.Candidate(2, "bread", "banana", 0.1)
    dried = fs.Candidate(3, "bananas", "dehydrated or banana powder", 0.2)
    assert [c.id for c in fs.rank(terms, [bread, dried, raw])] == [1, 3, 2]
    egg_terms = fs.plan("egg", fs.vocabulary_of(["egg whole raw", "eggplant raw"]))
    assert fs.rank(egg_terms, [fs.Candidate(1, "eggplant", "raw", 0.1), fs.Candidate(2, "egg", "whole raw", 0.1)]
                   )[0].id == 2
