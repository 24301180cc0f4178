"""How many options the questions an adapter trained on had, and a warning for a question
whose number of options it never saw.

A small adapter learns the scale lengths it is shown: the gss2018 adapter, trained only on
three-option questions, gives the fourth and fifth options of a new question next to
nothing (see the README's scale-sanity section). So wherever a simulation is shown (the
Focus group page, `focusgroup simulate`), an adapter that never trained on a question with
this many options says so.

The counts come from the adapter's manifest (`option_counts`, written by `focusgroup train`
since it was added, and carried by both shipped adapters' manifests, so a simulation loads no
other survey to check), or, for a manifest without them, from the surveys it lists: every
question of a trained survey except its held-out ones. `load` finds a survey by id (default:
`engine.surveys.load_survey`); a survey that cannot be loaded leaves the counts unknown, and
an unknown count warns of nothing (the bare model trained on nothing, so the other
training warnings speak for it).

    >>> option_count_warning("assets/adapters/gss2018-smollm2", new_question(text, four_labels))
    'The adapter gss2018-smollm2 never trained on a question with 4 options (it saw 3) ...'
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from engine.errors import FocusgroupError
from engine.models import adapter_manifest, trained_surveys


def manifest_option_counts(manifest: dict) -> set[int] | None:
    """The manifest's `option_counts`, when it is a non-empty list of whole numbers of at least
    2 (anything else in a hostile or damaged manifest is ignored, not trusted)."""
    counts = manifest.get("option_counts")
    if not isinstance(counts, list) or not counts:
        return None
    if not all(isinstance(count, int) and not isinstance(count, bool) and count >= 2 for count in counts):
        return None
    return set(counts)


def surveys_option_counts(trained: dict[str, list[str]], load: Callable) -> set[int] | None:
    """The option counts of every question of the `trained` surveys (id -> held-out question
    ids) but the held-out ones; None when a survey cannot be loaded."""
    counts = set()
    for survey_id, held_out in trained.items():
        try:
            survey = load(survey_id)
        except (FocusgroupError, OSError, ValueError):
            return None
        if survey is None:
            return None
        counts |= {len(question.options) for question in survey.questions if question.id not in held_out}
    return counts or None


def trained_option_counts(adapter: str | Path | None, load: Callable | None = None) -> set[int] | None:
    """The numbers of options of the questions `adapter` trained on (None: the bare model, an
    adapter without a readable manifest, or surveys that cannot be found)."""
    manifest = adapter_manifest(adapter)
    if not manifest:
        return None
    counts = manifest_option_counts(manifest)
    if counts is not None:
        return counts
    if load is None:
        from engine.surveys import load_survey as load
    return surveys_option_counts(trained_surveys(manifest), load)


def describe_counts(counts: Collection[int]) -> str:
    """3 -> "3"; {2, 3, 5} -> "2, 3 and 5"."""
    shown = [str(count) for count in sorted(counts)]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def option_count_warning(adapter: str | Path | None, question, load: Callable | None = None) -> str | None:
    """A sentence when `adapter` never trained on a question with as many options as
    `question`; None when it did, or when that is unknown."""
    return count_warning(adapter, trained_option_counts(adapter, load), len(question.options))


def count_warning(adapter: str | Path | None, counts: Collection[int] | None, options: int) -> str | None:
    """`option_count_warning` for counts already read (`trained_option_counts`, as a set or
    the dashboard's cached tuple)."""
    if adapter is None or counts is None or options in counts:
        return None
    return (f"The adapter {Path(adapter).name} never trained on a question with {options} options (it saw "
            f"{describe_counts(counts)}), so it may give some of these options next to nothing; "
            f"compare with the bare model or an adapter trained on {options}-option questions.")


__all__ = ["count_warning", "describe_counts", "manifest_option_counts", "option_count_warning", "surveys_option_counts",
           "trained_option_counts"]
