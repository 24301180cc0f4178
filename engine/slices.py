"""Demographic slices: "women 30-44 with a bachelor's degree" as field -> accepted values.

A slice is a mapping from field name to the readable values it accepts; a respondent is in
the slice when every field matches one of its values (an empty mapping is everyone).
Values are matched to the field's labels ignoring case, so `partyid="strong democrat"`
works. On the command line a slice is written `field=value[,value]`; labels that contain
commas ("Independent, close to Democrat") are recognised whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError
from engine.surveys.model import Survey

Slice = dict[str, tuple[str, ...]]


def match_values(survey: Survey, field_name: str, text: str) -> tuple[str, ...]:
    """Split `a,b` into the field's labels, joining pieces back when a label holds a comma."""
    field = survey.field(field_name)
    by_folded = {value.casefold(): value for value in field.values}
    pieces = [piece.strip() for piece in text.split(",")]
    matched, start = [], 0
    while start < len(pieces):
        for end in range(len(pieces), start, -1):
            candidate = ", ".join(pieces[start:end]).casefold()
            if candidate in by_folded:
                matched.append(by_folded[candidate])
                start = end
                break
        else:
            raise FocusgroupError(
                f"Field {field.name!r} has no value {pieces[start]!r}; values are: {'; '.join(field.values)}."
            )
    return tuple(dict.fromkeys(matched))


def parse_slice(survey: Survey, expressions: Iterable[str]) -> Slice:
    """Parse `["partyid=strong democrat", "age=30-44,45-59"]` into a slice."""
    result: Slice = {}
    for expression in expressions:
        name, separator, values = expression.partition("=")
        if not separator or not name.strip() or not values.strip():
            raise FocusgroupError(f"Slice {expression!r} is not of the form field=value[,value].")
        field = survey.field(name.strip())
        result[field.name] = tuple(dict.fromkeys(result.get(field.name, ()) + match_values(survey, field.name, values)))
    return result


def normalize_slice(survey: Survey, filters: Mapping[str, Iterable[str]]) -> Slice:
    """Check a slice built elsewhere (the dashboard) against the survey's fields and values."""
    result: Slice = {}
    for name, values in filters.items():
        values = tuple(values)
        if values:
            field = survey.field(name)
            result[field.name] = tuple(v for text in values for v in match_values(survey, field.name, text))
    return result


def slice_index(survey: Survey, filters: Mapping[str, tuple[str, ...]], within: pd.Index | None = None) -> pd.Index:
    """Respondent ids in the slice (optionally only those in `within`)."""
    demographics = survey.demographics if within is None else survey.demographics.loc[within]
    mask = pd.Series(True, index=demographics.index)
    for name, values in filters.items():
        mask &= demographics[name].isin(values).to_numpy()
    return demographics.index[mask.to_numpy()]


def slice_weights(survey: Survey, index: pd.Index, filters: Mapping[str, tuple[str, ...]]) -> np.ndarray:
    """The survey weights of the respondents in `index` (drawn from the slice `filters`).

    Refused when they sum to 0: respondents who all carry weight 0 contribute nothing to a
    weighted distribution, and "widen the slice" would be the wrong advice when the slice
    has people in it."""
    weights = survey.weight_array(index)
    if len(index) and weights.sum() <= 0:
        raise FocusgroupError(
            f"All {len(index)} respondents of {survey.id!r} drawn from the slice ({describe_slice(filters)}) "
            "have survey weight 0, so they carry no weighted answers; choose a slice (or more personas) "
            "that includes respondents with a positive weight."
        )
    return weights


def describe_slice(filters: Mapping[str, tuple[str, ...]]) -> str:
    """A readable line: "partyid = Strong Democrat; age = 30-44 or 45-59" (or "everyone")."""
    if not filters:
        return "everyone"
    return "; ".join(f"{name} = {' or '.join(values)}" for name, values in filters.items())


def single_field_slices(survey: Survey, index: pd.Index, min_size: int) -> list[Slice]:
    """Every one-field, one-value slice with at least `min_size` respondents in `index`."""
    slices = []
    demographics = survey.demographics.loc[index]
    for field in survey.fields:
        counts = demographics[field.name].value_counts()
        for value in field.values:
            if counts.get(value, 0) >= min_size:
                slices.append({field.name: (value,)})
    return slices
