"""Slices: readable values matched case-insensitively, commas inside labels, clear errors."""

import pytest

from engine.errors import FocusgroupError
from engine.slices import describe_slice, parse_slice, single_field_slices, slice_index


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
