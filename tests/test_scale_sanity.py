"""Scale sanity of the general adapter on new product questions.

An adapter that learned only three-option scales gives the options it never saw next to
nothing. On a new 4-, 5- and 7-option question the general adapter (the default for every
survey without its own adapter, and for new surveys) must give every option
at least 1% for a median persona of the default survey, and never less than a tenth of what
the bare model gives the same option.

The median persona takes each demographic field at its survey-weighted median value, in
the order the field lists its values. FOCUSGROUP_SANITY_ADAPTER points the test at another
adapter folder (to check a candidate before shipping it).
"""

import os

import numpy as np
import pandas as pd
import pytest

from engine.metrics import apply_temperature
from engine.models import ModelConfig, general_adapter, load_model
from engine.prompts import render_persona
from engine.scoring import option_logits
from engine.surveys.model import Option, Question

NEW_QUESTIONS = {
    4: ("How likely would you be to buy an electric car in the next 3 years?",
        ["Very likely", "Somewhat likely", "Not too likely", "Not at all likely"]),
    5: ("How satisfied are you with your current mobile phone plan?",
        ["Very satisfied", "Somewhat satisfied", "Neither satisfied nor dissatisfied", "Somewhat dissatisfied",
         "Very dissatisfied"]),
    7: ("How much do you agree: I would pay more for groceries that are grown locally.",
        ["Strongly agree", "Agree", "Somewhat agree", "Neither agree nor disagree", "Somewhat disagree", "Disagree",
         "Strongly disagree"]),
}
FLOOR = 0.01
BARE_FRACTION = 0.1


def median_persona(survey) -> str:
    """Each field at its survey-weighted median value (values in the field's listed order)."""
    weights = survey.weight_array(survey.demographics.index)
    row = {}
    for field in survey.fields:
        codes = survey.demographics[field.name].cat.codes.to_numpy()
        known = codes >= 0
        order = np.argsort(codes[known], kind="stable")
        cumulative = np.cumsum(weights[known][order])
        median_code = codes[known][order][np.searchsorted(cumulative, cumulative[-1] / 2)]
        row[field.name] = field.values[median_code]
    return render_persona(survey.fields, pd.Series(row))


def new_question(n_options: int) -> Question:
    text, labels = NEW_QUESTIONS[n_options]
    return Question(id=f"new_{n_options}", text=text, type="ordinal",
                    options=tuple(Option((str(i),), label, float(i + 1)) for i, label in enumerate(labels)))


def distribution(loaded, survey, question, persona) -> np.ndarray:
    return apply_temperature(option_logits(loaded, question, survey.fields, [persona], use_cache=False), 1.0)[0]


@pytest.fixture(scope="module")
def models(gss, default_model):
    adapter = os.environ.get("FOCUSGROUP_SANITY_ADAPTER") or general_adapter()
    assert adapter is not None, "no general adapter is shipped for the default model"
    return default_model, load_model(ModelConfig(adapter=str(adapter)))


def test_median_persona_is_a_real_profile(gss):
    persona = median_persona(gss)
    for field in gss.fields:
        assert any(value in persona for value in field.values), field.name


@pytest.mark.parametrize("n_options", sorted(NEW_QUESTIONS))
def test_every_option_keeps_its_share(gss, models, n_options):
    bare, adapted = models
    question = new_question(n_options)
    persona = median_persona(gss)
    with_adapter = distribution(adapted, gss, question, persona)
    without = distribution(bare, gss, question, persona)
    shares = ", ".join(f"{label}: {p:.3f} (bare {b:.3f})" for label, p, b in zip(question.labels, with_adapter, without))
    assert with_adapter.min() >= FLOOR, f"an option under {FLOOR:.0%}: {shares}"
    assert (with_adapter >= BARE_FRACTION * without).all(), f"an option under a tenth of the bare model's: {shares}"
