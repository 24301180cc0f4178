"""Slices: readable values matched case-insensitively, commas inside labels, quoted values, clear errors."""

import pytest

from engine.errors import FocusgroupError
from engine.slices import describe_slice, normalize_slice, parse_slice, single_field_slices, slice_index


def test_values_match_labels_ignoring_case(gss):
    assert parse_slice(gss, ["partyid=strong democrat"]) == {"partyid": ("Strong Democrat",)}


def test_labels_with_commas_are_recognised_whole(gss):
    filters = parse_slice(gss, ["partyid=Independent, close to Democrat,strong democrat"])
    assert filters == {"partyid": ("Independent, close to Democrat", "Strong Democrat")}


def test_slice_keeps_only_matching_respondents(gss):
    filters = parse_slice(gss, ["sex=female", "age=30-44,45-59"])
    index = slice_index(gss, filters)
    rows = gss.demographics.loc[index]
    assert len(index) > 0
    assert set(rows["sex"]) == {"Female"} and set(rows["age"]) == {"30-44", "45-59"}
    expected = ((gss.demographics["sex"] == "Female") & gss.demographics["age"].isin(["30-44", "45-59"])).sum()
    assert len(index) == expected
    assert describe_slice(filters) == "sex = Female; age = 30-44 or 45-59"


@pytest.mark.parametrize("expression,message", [
    ("shoe=42", "no demographic field"),
    ("sex=robot", "no value 'robot'"),
    ("sex", "field=value"),
    ("=Female", "field=value"),
])
def test_bad_slices_are_explained(gss, expression, message):
    with pytest.raises(FocusgroupError, match=message):
        parse_slice(gss, [expression])


def test_single_field_slices_respect_the_minimum_size(gss):
    slices = single_field_slices(gss, gss.demographics.index, min_size=300)
    assert {"sex": ("Female",)} in slices
    for filters in slices:
        assert len(slice_index(gss, filters)) >= 300


# -- labels that hold commas, and double-quoted values ------------------------------------------
INCOMES = ("Under $50,000", "$50,000 to $99,999", "$100,000 or more")
PARTIES = ("Independent, close to Democrat", "Independent", "close to Democrat", 'Other "third" party')


@pytest.fixture
def panel():
    """Four respondents whose income and party labels hold commas (and one a double quote)."""
    import numpy as np
    import pandas as pd

    from engine.surveys.model import DemographicField, Option, Question, Survey

    demographics = pd.DataFrame({
        "income": pd.Categorical([*INCOMES, INCOMES[2]], categories=INCOMES, ordered=True),
        "party": pd.Categorical(list(PARTIES), categories=PARTIES, ordered=True),
    })
    question = Question("buy", "Would you buy it?", "nominal", (Option(("1",), "Yes", 1.0), Option(("2",), "No", 2.0)))
    return Survey(
        id="panel", title="Panel", description="", source="", license="",
        fields=(DemographicField("income", "Income", INCOMES), DemographicField("party", "Party", PARTIES)),
        questions=(question,), demographics=demographics,
        answers=pd.DataFrame({"buy": np.array([0, 1, 0, 1], dtype=np.int16)}),
    )


def test_a_label_with_a_comma_but_no_space_is_selected_whole(panel):
    filters = parse_slice(panel, ["income=$100,000 or more"])
    assert filters == {"income": ("$100,000 or more",)}
    assert len(slice_index(panel, filters)) == 2


@pytest.mark.parametrize("values,expected", [
    ("$100,000 or more,$50,000 to $99,999", ("$100,000 or more", "$50,000 to $99,999")),
    ("under $50,000, $100,000 OR MORE", ("Under $50,000", "$100,000 or more")),
    ("$100, 000 or more", ("$100,000 or more",)),
])
def test_several_labels_with_commas_split_into_whole_labels(panel, values, expected):
    assert parse_slice(panel, [f"income={values}"]) == {"income": expected}


def test_the_longest_label_wins_whatever_the_space_after_its_comma(panel):
    for values in ("Independent, close to Democrat", "independent,close to democrat"):
        assert parse_slice(panel, [f"party={values}"]) == {"party": ("Independent, close to Democrat",)}


def test_a_double_quoted_value_is_taken_whole_and_never_joined(panel):
    assert parse_slice(panel, ['income="$100,000 or more",under $50,000']) == {
        "income": ("$100,000 or more", "Under $50,000")}
    assert parse_slice(panel, ['party="Independent", "close to Democrat"']) == {
        "party": ("Independent", "close to Democrat")}


def test_a_label_holding_double_quotes_is_matched_as_given(panel):
    assert parse_slice(panel, ['party=other "third" party']) == {"party": ('Other "third" party',)}
    assert normalize_slice(panel, {"party": ['Other "third" party', "Independent, close to Democrat"]}) == {
        "party": ('Other "third" party', "Independent, close to Democrat")}


@pytest.mark.parametrize("values,message", [
    ("$100", "no value '\\$100'.*double quotes"),
    ('"$100,000 or more', "unclosed double quote"),
    ('"Independent"x', "stray or unclosed double quote"),
    ("$100,000 or more,", "empty value"),
])
def test_bad_value_lists_name_the_problem_and_the_fix(panel, values, message):
    field = "party" if "Independent" in values else "income"
    with pytest.raises(FocusgroupError, match=message):
        parse_slice(panel, [f"{field}={values}"])


def test_a_slice_described_for_readers_uses_the_field_labels(gss):
    filters = normalize_slice(gss, {"partyid": ["Strong Democrat"], "age": ["30-44", "45-59"]})
    assert describe_slice(filters, gss) == "Party: Strong Democrat; Age: 30-44 or 45-59"
    assert describe_slice({}, gss) == "everyone"
