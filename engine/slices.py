"""Demographic slices: "women 30-44 with a bachelor's degree" as field -> accepted values.

A slice is a mapping from field name to the readable values it accepts; a respondent is in
the slice when every field matches one of its values (an empty mapping is everyone).
Values are matched to the field's labels ignoring case, so `partyid="strong democrat"`
works.

On the command line a slice is written `field=value[,value]`. Commas separate values, but
a label that holds commas is recognised whole: at each point the longest run of
comma-separated pieces that is a label wins, with or without spaces after its commas, so
`income=$100,000 or more` and `partyid=Independent,close to Democrat` each name one value
while `age=30-44,45-59` names two. A value in double quotes is taken whole and never joined
with its neighbours: `partyid="Independent, close to Democrat",Strong Democrat` (in a shell,
quote the whole argument: `--slice 'income="$100,000 or more"'`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError, capped
from engine.surveys.model import DemographicField, Survey

Slice = dict[str, tuple[str, ...]]
# One value of a `value[,value]` list: a double-quoted text taken whole, or plain text up to
# the next comma; either is followed by a comma or the end.
VALUE = re.compile(r'\s*(?:"(?P<quoted>[^"]*)"|(?P<plain>[^,"]*))\s*(?:,|$)')


@dataclass(frozen=True)
class Piece:
    """One comma-separated piece of a value list, as written; `quoted` pieces stand alone."""

    text: str
    quoted: bool


def value_key(text: str) -> str:
    """How a value is compared with a label: case, whitespace runs and the spaces around
    commas are ignored, so "$100,000 OR more" and "Independent,close to Democrat" match."""
    return re.sub(r" ?, ?", ",", " ".join(text.split())).casefold()


def split_pieces(field: DemographicField, text: str) -> list[Piece]:
    """`a, "b, c",d` -> a, b, c (quoted), d; refused when a quote is not closed or stands
    inside a value."""
    pieces, position = [], 0
    while True:
        match = VALUE.match(text, position)
        if match is None:
            raise FocusgroupError(
                f"The values {capped(repr(text))} of field {field.name!r} have a stray or unclosed double quote; "
                'put a whole value in double quotes ("$100,000 or more") and separate values with commas.'
            )
        quoted = match.group("quoted")
        pieces.append(Piece(match.group("plain") if quoted is None else quoted, quoted is not None))
        position = match.end()
        if position >= len(text) and not match.group().endswith(","):
            return pieces


def match_label(field: DemographicField, text: str) -> str | None:
    """The field's label that `text` names: an exact match ignoring case first, then one
    that differs only in spacing around commas; None when there is none."""
    exact = " ".join(text.split()).casefold()
    for value in field.values:
        if " ".join(value.split()).casefold() == exact:
            return value
    key = value_key(text)
    return next((value for value in field.values if value_key(value) == key), None)


def match_values(survey: Survey, field_name: str, text: str) -> tuple[str, ...]:
    """The field's labels named by `text`, a `value[,value]` list (see the module docstring).

    The whole text is tried as one label first (the dashboard passes labels as they are,
    quotes and all); otherwise, from left to right, the longest run of unquoted pieces that
    is a label wins, and a quoted piece must be a label by itself. Repeats are dropped, the
    order kept. An unknown value raises FocusgroupError listing the field's values."""
    field = survey.field(field_name)
    whole = match_label(field, text)
    if whole is not None:
        return (whole,)
    pieces = split_pieces(field, text)
    matched, start = [], 0
    while start < len(pieces):
        label, start = longest_label(field, pieces, start)
        matched.append(label)
    return tuple(dict.fromkeys(matched))


def longest_label(field: DemographicField, pieces: list[Piece], start: int) -> tuple[str, int]:
    """The label made of the most pieces from `start` on, and where the next value begins."""
    if pieces[start].quoted:
        ends = [start + 1]
    else:
        # No label spans more pieces than it has commas, so a long list costs no more than a short one.
        longest = start + 1 + max((value.count(",") for value in field.values), default=0)
        run_end = next((index for index in range(start, len(pieces)) if pieces[index].quoted), len(pieces))
        ends = list(range(min(run_end, longest), start, -1))
    for end in ends:
        label = match_label(field, ",".join(piece.text for piece in pieces[start:end]))
        if label is not None:
            return label, end
    raise unknown_value(field, pieces[start])


def unknown_value(field: DemographicField, piece: Piece) -> FocusgroupError:
    """The error for a value that is no label of `field`, with the way to quote one."""
    if not piece.text.strip():
        return FocusgroupError(
            f"Field {field.name!r} has an empty value in its list; remove the extra comma. "
            f"Values are: {'; '.join(field.values)}."
        )
    return FocusgroupError(
        f"Field {field.name!r} has no value {capped(repr(piece.text.strip()))}; values are: "
        f"{'; '.join(field.values)}. Separate values with commas; put a value that holds a comma in double "
        'quotes ("$100,000 or more").'
    )


def parse_slice(survey: Survey, expressions: Iterable[str]) -> Slice:
    """Parse `["partyid=strong democrat", "age=30-44,45-59"]` into a slice.

    Each expression is `field=value[,value]` (see the module docstring for commas inside
    labels and double-quoted values); a field given twice accepts the values of both."""
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


def describe_slice(filters: Mapping[str, tuple[str, ...]], survey: Survey | None = None) -> str:
    """A readable line: "partyid = Strong Democrat; age = 30-44 or 45-59" (or "everyone");
    with `survey`, in its fields' labels, for readers: "Party: Strong Democrat; Age: 30-44 or
    45-59"."""
    if not filters:
        return "everyone"
    if survey is not None:
        labels = {field.name: field.label or field.name for field in survey.fields}
        return "; ".join(f"{labels.get(name, name)}: {' or '.join(values)}" for name, values in filters.items())
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
