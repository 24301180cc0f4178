"""Surveys: the in-memory model, spec-driven loaders, the registry and respondent splits."""

from engine.surveys.model import MISSING, DemographicField, Option, Question, Survey
from engine.surveys.registry import DEFAULT_SURVEY, list_surveys, load_survey, resolve_data_dir
from engine.surveys.split import SPLITS, held_out_questions, split_respondents

__all__ = [
    "MISSING", "DemographicField", "Option", "Question", "Survey", "DEFAULT_SURVEY",
    "list_surveys", "load_survey", "resolve_data_dir", "SPLITS", "held_out_questions",
    "split_respondents",
]
