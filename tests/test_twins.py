"""Twins: context answers in the persona, how they are chosen, and what never enters."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from engine.errors import FocusgroupError
from engine.prompts import render_persona, render_prompt
from engine.surveys.model import DemographicField, Option, Question, Survey
from engine.twins import AUTO, choose_context, similar_questions, twin_personas


def pets_survey() -> Survey:
    """Four respondents; "cats" is asked; "cats_pets" and "dogs" are worded like it."""
    index = pd.Index(["r1", "r2", "r3", "r4"], name="respondent")
    options = lambda labels: tuple(Option((str(i),), label, float(i + 1)) for i, label in enumerate(labels))
    agree = options(["Agree", "Disagree"])
    questions = (
        Question("income", "What was your household income last year?", "ordinal", options(["Low", "High"])),
        Question("cats", "Do you like cats?", "ordinal", agree),
        Question("dogs", "Do you like dogs as pets?", "ordinal", agree),
        Question("cats_pets", "Do you like cats as pets?", "ordinal", agree),
        Question("taxes", "Should taxes on petrol go up?", "ordinal", agree),
    )
    answers = pd.DataFrame({"income": [0, 1, 1, 0], "cats": [0, 1, 0, 1], "dogs": [1, -1, 0, 0],
                            "cats_pets": [0, 1, -1, 1], "taxes": [1, 1, 0, 0]}, index=index, dtype=np.int16)
    sex = pd.Categorical.from_codes([0, 1, 0, 1], ["Female", "Male"], ordered=True)
    return Survey(id="pets", title="Pets", description="", source="made by hand", license="none",
                  fields=(DemographicField("sex", "Sex", ("Female", "Male")),), questions=questions,
                  demographics=pd.DataFrame({"sex": sex}, index=index), answers=answers, weights=None)


def test_a_twin_prompt_is_pinned(tiny, gss):
    asked = gss.question("natspac")
    persona = twin_personas(gss, pd.Index(["1"]), ["natsci"], asked)[0]
    prompt = render_prompt(tiny.tokenizer, asked, gss.fields, persona)
    demographic = render_persona(gss.fields, gss.demographics.loc["1"])
    answer = gss.question("natsci").labels[gss.answers.loc["1", "natsci"]]
    # the battery's preamble is already in the asked question: only the rest is shown
    assert prompt.persona_part.startswith(
        f"{demographic}\nEarlier, asked \"... supporting scientific research?\", they answered \"{answer}\".<|im_end|>")
    plain = twin_personas(gss, pd.Index(["1"]), ["natsci"])[0]
    assert plain.startswith(f"{demographic}\nEarlier, asked \"We are faced with many problems in this country, ")
    assert plain.endswith(f"or about the right amount on supporting scientific research?\", they answered \"{answer}\".")


def test_a_twin_tokenizes_like_its_whole_prompt(tiny, gss):
    persona = twin_personas(gss, pd.Index(["2"]), ["natsci", "natenvir"])[0]
    prompt = render_prompt(tiny.tokenizer, gss.question("natenrgy"), gss.fields, persona)
    tokens = lambda text: tiny.tokenizer(text, add_special_tokens=False).input_ids
    assert tokens(prompt.prefix) + tokens(prompt.persona_part) == tokens(prompt.text)


def test_no_context_renders_the_plain_persona():
    survey = pets_survey()
    assert twin_personas(survey, survey.demographics.index, []) == ["Female", "Male", "Female", "Male"]


def test_context_lines_follow_the_chosen_order_and_skip_unanswered():
    survey = pets_survey()
    personas = twin_personas(survey, pd.Index(["r2", "r3"]), ["dogs", "income"])
    assert personas[0] == 'Male\nEarlier, asked "What was your household income last year?", they answered "High".'
    assert personas[1] == ('Female\nEarlier, asked "Do you like dogs as pets?", they answered "Agree".\n'
                           'Earlier, asked "What was your household income last year?", they answered "High".')


def test_auto_ranks_by_wording_and_never_offers_the_asked_question():
    survey = pets_survey()
    asked = survey.question("cats")
    assert choose_context(survey, asked, AUTO, k=2) == ("cats_pets", "dogs")
    assert "cats" not in choose_context(survey, asked, AUTO, k=4)
    assert len(choose_context(survey, asked, AUTO, k=10)) == 4  # every other question, no more


def test_auto_never_reads_answers():
    survey = pets_survey()
    asked = survey.question("cats")
    chosen = choose_context(survey, asked, AUTO, k=3)
    scrambled = dataclasses.replace(survey, answers=survey.answers.apply(lambda column: column[::-1].to_numpy()))
    emptied = dataclasses.replace(survey, answers=survey.answers * 0 - 1)
    assert choose_context(scrambled, asked, AUTO, k=3) == chosen == choose_context(emptied, asked, AUTO, k=3)


def test_held_out_questions_never_enter_the_context():
    survey = pets_survey()
    asked = survey.question("cats")
    assert choose_context(survey, asked, AUTO, k=2, excluded={"cats_pets"}) == ("dogs", "income")
    with pytest.raises(FocusgroupError, match="held out"):
        choose_context(survey, asked, ["dogs", "cats_pets"], excluded={"cats_pets"})


def test_named_context_is_checked():
    survey = pets_survey()
    asked = survey.question("cats")
    assert choose_context(survey, asked, ["taxes", "dogs", "taxes"]) == ("taxes", "dogs")
    assert choose_context(survey, asked, ["taxes", "dogs"], k=1) == ("taxes",)
    assert choose_context(survey, asked, None) == () == choose_context(survey, asked, [])
    with pytest.raises(FocusgroupError, match="its own context"):
        choose_context(survey, asked, ["cats"])
    with pytest.raises(FocusgroupError, match="'horses' is not in survey 'pets'"):
        choose_context(survey, asked, ["horses"])
    with pytest.raises(FocusgroupError, match="between 0 and"):
        choose_context(survey, asked, AUTO, k=-1)


def test_a_new_question_gets_context_by_its_wording():
    survey = pets_survey()
    new = Question("new_question", "Would you adopt a cat as a pet?", "ordinal",
                   (Option(("0",), "Yes", 1.0), Option(("1",), "No", 2.0)))
    assert similar_questions(survey, new, ["income", "taxes", "cats_pets"])[0] == "cats_pets"


def test_training_twins_carry_own_answers_and_never_held_out_questions():
    from engine.training.config import TrainConfig
    from engine.training.examples import Example, step_batch
    from engine.twins import TrainingContexts

    survey = pets_survey()
    contexts = TrainingContexts({"pets": survey}, {"pets": ("cats_pets",)}, max_context=3)
    asked = survey.question("cats")
    examples = [Example("pets", "cats", respondent, plain, int(survey.answers.loc[respondent, "cats"]))
                for respondent, plain in zip(survey.demographics.index, twin_personas(survey, survey.demographics.index, []))]
    config = TrainConfig(out="x", max_context=3)
    counts = set()
    for step in range(60):
        batch = step_batch(examples, asked, config, None, contexts, step)
        assert [e.target for e in batch.examples] == [e.target for e in examples]
        lengths = {e.respondent: len(e.persona.split("\n")) - 1 for e in batch.examples}
        k = lengths["r1"]  # r1, r3 and r4 answered every question that may be shown: each shows K
        assert lengths["r3"] == lengths["r4"] == k and lengths["r2"] <= k  # one K per batch
        counts.add(k)
        for example in batch.examples:
            lines = example.persona.split("\n")[1:]
            assert len(lines) <= 3 and not any("Do you like cats" in line for line in lines)  # not asked, not held out
            expected = twin_personas(survey, pd.Index([example.respondent]), ["dogs", "income", "taxes"], asked)[0]
            assert set(lines) <= set(expected.split("\n")[1:])  # the respondent's own answers only
    assert counts == {0, 1, 2, 3}
    again = step_batch(examples, asked, config, None, contexts, 5)
    assert again == step_batch(examples, asked, config, None, contexts, 5)  # a resumed step draws the same


def test_training_with_context_shows_twins_but_no_held_out_question(tmp_path, data_dir, monkeypatch):
    import engine.training.trainer as trainer
    from engine.surveys import load_survey
    from engine.surveys.split import held_out_questions
    from engine.training.config import TrainConfig

    seen = []

    def recording(*args, **kwargs):
        batch = step_batch(*args, **kwargs)
        seen.append(batch)
        return batch

    from engine.training.examples import step_batch
    monkeypatch.setattr(trainer, "step_batch", recording)
    manifest = trainer.train(TrainConfig(
        out=str(tmp_path / "twins"), surveys=("gss2018", "non-voters"), max_steps=6, max_context=4,
        base_model="tiny", batch_size=4, max_examples_per_survey=24, max_examples_per_question=6, eval_examples=8,
        eval_every=3, data_dir=str(data_dir)))
    assert manifest["hyperparameters"]["max_context"] == 4 and len(seen) == 6
    lines = [line for batch in seen for example in batch.examples for line in example.persona.split("\n")[1:]]
    assert lines and all(line.startswith("Earlier, asked ") for line in lines)
    for survey_id in ("gss2018", "non-voters"):
        survey = load_survey(survey_id, data_dir)
        for question_id in held_out_questions(survey):
            # the last words survive the preamble's elision and name this question alone
            tail = " ".join(survey.question(question_id).text.split()[-3:])
            assert [q.id for q in survey.questions if q.text.endswith(tail)] == [question_id]
            assert not any(tail in line for line in lines), question_id


def test_simulate_with_auto_context_on_the_tiny_model(capsys, data_dir):
    import json

    from engine.cli import main

    argv = ["simulate", "--survey", "non-voters", "--question", "Q3_4", "--personas", "40", "--model", "tiny",
            "--dtype", "float32", "--no-gaps", "--data-dir", str(data_dir)]
    assert main([*argv, "--context-questions", "auto", "--context-k", "5", "--format", "json"]) == 0
    twins = json.loads(capsys.readouterr().out)
    assert len(twins["context"]) == 5 and "Q3_4" not in twins["context"]
    assert twins["context_description"].startswith("context (5): ")
    assert main([*argv, "--format", "json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["context"] == [] and plain["simulated"] != twins["simulated"]  # the model read the lines
    assert plain["real"] == twins["real"]
    assert main([*argv, "--context-questions", "auto", "--context-k", "2"]) == 0
    assert "Personas are twins with their answers to context (2): " in capsys.readouterr().out


@pytest.mark.parametrize("extra,message", [
    (["--context-questions", "natenrgy"], "its own context"),
    (["--context-questions", "natxyz"], "Context question 'natxyz' is not in survey 'gss2018'"),
    (["--context-questions", "auto", "--context-k", "99"], "between 0 and 20"),
    (["--context-questions", "natsci", "--mode", "generate"], "--mode logits only"),
])
def test_bad_context_exits_2_with_one_clear_line(capsys, extra, message):
    from engine.cli import main

    assert main(["simulate", "--question", "natenrgy", "--model", "tiny", "--personas", "8", *extra]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("focusgroup: error:")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err


def test_evaluate_with_context_shows_twins_the_held_out_set_never(tiny, gss):
    from engine.evaluate import EvaluationConfig, evaluate

    config = EvaluationConfig(questions=("natsci", "natenrgy"), context_k=3)
    result = evaluate(tiny, gss, config)
    plain = evaluate(tiny, gss, EvaluationConfig(questions=("natsci", "natenrgy")))
    assert result["context_k"] == 3
    for question, without in zip(result["questions"], plain["questions"]):
        assert len(question["context"]) == 3 and without["context"] == []
        assert not {question["id"], "natenrgy", "natenvir"} & set(question["context"])
        assert question["population"]["real"] == without["population"]["real"]
        # the logistic baseline sees the same answers, and they tell it something
        assert question["individual"]["baselines"]["logistic"]["log_loss"] != \
            without["individual"]["baselines"]["logistic"]["log_loss"]
    with pytest.raises(FocusgroupError, match="--context-k"):
        EvaluationConfig(context_k=21)
