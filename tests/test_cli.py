"""The command line: JSON shapes, and one clear line (no traceback) for every bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_surveys_lists_gss_and_the_shared_surveys_with_counts(capsys, data_dir):
    code, out, _ = run(capsys, "surveys", "--data-dir", str(data_dir), "--format", "json")
    assert code == 0
    rows = {row["id"]: row for row in json.loads(out)}
    assert rows["gss2018"]["respondents"] == 2348 and rows["gss2018"]["questions"] == 18
    assert rows["non-voters"]["respondents"] == 5836
    assert len(rows) >= 7


def test_questions_lists_wording_and_fields(capsys):
    code, out, _ = run(capsys, "questions", "--survey", "gss2018", "--format", "json")
    result = json.loads(out)
    assert code == 0
    assert any(q["id"] == "natenrgy" and q["held_out"] for q in result["questions"])
    assert result["fields"][0]["name"] == "age"


def test_simulate_json_on_the_tiny_model(capsys):
    code, out, _ = run(capsys, "simulate", "--question", "natenrgy", "--slice", "partyid=strong democrat",
                       "--model", "tiny", "--dtype", "float32", "--temperature", "0.5", "--format", "json")
    assert code == 0
    result = json.loads(out)
    assert result["n_real"] == 368 and result["temperature"] == 0.5
    assert set(result["simulated"]) == set(result["real"]) == {"Too little", "About right", "Too much"}


def test_simulate_table_mentions_noise_floor_and_provenance(capsys):
    code, out, _ = run(capsys, "simulate", "--question", "natspac", "--slice", "sex=female", "--personas", "30",
                       "--model", "tiny", "--no-baselines")
    assert code == 0
    assert "noise floor" in out and "NORC" in out


def test_simulate_table_says_how_baselines_were_fitted(capsys):
    assert main(["simulate", "--survey", "gss2018", "--question", "natenrgy", "--model", "tiny", "--no-gaps",
                 "--slice", "partyid=strong democrat"]) == 0
    out = capsys.readouterr().out
    assert "marginal, logistic, gradient_boosting, svr: fitted outside the slice" in out
    assert "exact reference" not in out
    assert main(["simulate", "--survey", "gss2018", "--question", "natenrgy", "--model", "tiny", "--no-gaps"]) == 0
    out = capsys.readouterr().out
    assert "marginal: JS 0.000, the slice's own answers (an exact reference, not a competitor)" in out
    assert "Baselines, JS distance: uniform" in out and ", marginal " not in out.split("Baselines")[1].split("\n")[0]


def test_the_vllm_backend_refuses_the_tiny_model_and_4_bit_loading(capsys):
    for extra in (["--model", "tiny"], ["--load-in-4bit"]):
        assert main(["simulate", "--question", "natspac", "--backend", "vllm", *extra]) == 2
        assert "--backend vllm serves real weights" in capsys.readouterr().err


def test_evaluate_table_and_json_on_the_tiny_model(capsys):
    argv = ("evaluate", "--questions", "natenrgy", "natspac", "--model", "tiny", "--dtype", "float32",
            "--min-slice", "40")
    code, out, _ = run(capsys, *argv)
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("nat")}
    assert set(rows) == {"natenrgy*", "natspac"} and rows["natenrgy*"][1] == "220"
    trained = next(line for line in out.splitlines() if line.startswith("Trained questions (1,"))
    held_out = next(line for line in out.splitlines() if line.startswith("Held-out questions (1,"))
    code, out, _ = run(capsys, *argv, "--format", "json")
    summary = json.loads(out)["summary"]
    for line, group in ((trained, "trained"), (held_out, "held_out")):
        slices, individual = summary[group]["slices"], summary[group]["individual"]
        assert summary[group]["no_data_baselines"] == ["scale_prior", "uniform"]
        assert "marginal" in summary[group]["data_baselines"]
        js, log_loss = line.split("; log loss ")
        without, with_them = js.split("; with them: ")
        assert f"slice JS model {slices['model']['js']:.3f}; without the question's answers: " in without
        assert without.endswith(f"scale_prior {slices['baselines']['scale_prior']['js']:.3f}, "
                                f"uniform {slices['baselines']['uniform']['js']:.3f}")
        assert with_them.startswith(f"marginal {slices['baselines']['marginal']['js']:.3f}, best classical ")
        assert with_them.endswith(f"; noise floor {slices['noise_floor']['js']:.3f}")
        assert log_loss.startswith(f"model {individual['model']['log_loss']:.3f}; without: "
                                   f"scale_prior {individual['baselines']['scale_prior']['log_loss']:.3f}, "
                                   f"uniform {individual['baselines']['uniform']['log_loss']:.3f}; with: "
                                   f"marginal {individual['baselines']['marginal']['log_loss']:.3f}, best classical ")


@pytest.mark.parametrize("argv,message", [
    (["simulate", "--survey", "nope", "--question", "x"], "Unknown survey 'nope'"),
    (["simulate", "--question", "natxyz"], "no question 'natxyz'"),
    (["simulate", "--question", "natenrgy", "--slice", "shoe=42"], "no demographic field 'shoe'"),
    (["simulate", "--question", "natenrgy", "--slice", "sex=robot"], "no value 'robot'"),
    (["simulate", "--question", "natenrgy", "--slice", "race=other", "--slice", "partyid=other party",
      "--slice", "age=75+", "--model", "tiny"], "widen it"),
    (["simulate", "--question", "natenrgy", "--model", "/no/such/model"], "does not exist"),
    (["simulate", "--question", "natenrgy", "--adapter", "/tmp"], "not a peft adapter"),
    (["simulate", "--question", "natenrgy", "--model", "tiny", "--temperature", "-1"], "zero or positive"),
    (["simulate", "--question", "natenrgy", "--device", "cuda", "--model", "tiny"], "no CUDA GPU"),
    (["surveys", "--data-dir", "/no/such/folder"], "does not exist"),
    (["simulate"], "pass --question ID"),
    (["simulate", "--question", "natenrgy", "--options", "Yes", "No"], "--options describes a new question"),
    (["simulate", "--ask", "Would you buy it?"], "--ask needs the answer options"),
    (["simulate", "--ask", "Would you buy it?", "--options", "Yes", " yes "], "repeats 'Yes'"),
    (["simulate", "--ask", "Would you buy it?", "--options", "Yes", ""], "Option 2 of --options is blank"),
    (["simulate", "--ask", "  ", "--options", "Yes", "No"], "--ask is blank"),
    (["simulate", "--ask", "Would you buy it?", "--options", "Yes", "No", "--scale", "nominal", "--positive",
      "last"], "--scale nominal has none"),
])
def test_bad_input_exits_2_with_one_clear_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("focusgroup: error:")]
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in err


def test_a_malformed_spec_file_exits_2(capsys, tmp_path):
    spec = tmp_path / "broken.toml"
    spec.write_text("id = [")
    code, _, err = run(capsys, "questions", "--survey", str(spec))
    assert code == 2 and "not valid TOML" in err


def test_console_script_runs_as_a_process():
    result = subprocess.run([sys.executable, "-m", "engine.cli", "simulate", "--question", "natxyz"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("focusgroup: error:") and "Traceback" not in result.stderr


def test_simulate_generate_mode_reports_parse_success(capsys):
    code, out, _ = run(capsys, "simulate", "--question", "natspac", "--personas", "12", "--mode", "generate",
                       "--model", "tiny", "--format", "json")
    result = json.loads(out)
    assert code == 0 and result["mode"] == "generate"
    assert 0.0 <= result["parse_success_rate"] <= 1.0 and result["n_personas"] == 12


def test_simulate_lists_seeded_samples(capsys):
    argv = ["simulate", "--question", "natspac", "--personas", "20", "--model", "tiny", "--no-baselines",
            "--samples", "5", "--seed", "4", "--format", "json"]
    first = json.loads(run(capsys, *argv)[1])["samples"]
    again = json.loads(run(capsys, *argv)[1])["samples"]
    assert len(first) == 5 and first == again
    assert all(sample["answer"] in ("Too little", "About right", "Too much") for sample in first)


def test_simulate_with_a_pilot_prints_the_three_estimates(capsys):
    argv = ("simulate", "--question", "natenvir", "--slice", "partyid=strong democrat", "--pilot-size", "400",
            "--model", "tiny", "--no-baselines", "--no-gaps")
    code, out, _ = run(capsys, *argv, "--format", "json")
    assert code == 0
    pilot = json.loads(out)["pilot"]
    assert pilot["source"] == "400 respondents drawn with seed 0" and pilot["pilot_in_slice"] > 30
    assert set(pilot["estimates"]) == {"pilot", "model", "ppi", "relevelled"}
    assert pilot["estimates"]["model"]["low"] is None and pilot["estimates"]["ppi"]["low"] is not None
    assert set(pilot["truth"]) == set(pilot["estimates"]["ppi"]["shares"]) == {"Too little", "About right", "Too much"}
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "pilot + model" in out and "real, outside the pilot" in out and "pilot answers in" in out


# -- a new question (--ask), drawn personas, labels, warnings ------------------------------

EV = "How likely would you be to buy an electric car in the next 3 years?"
LIKELY = ("Very likely", "Somewhat likely", "Not very likely", "Not at all likely")


def test_ask_simulates_a_new_question_with_slice_stimulus_twins_and_gaps(capsys):
    argv = ("simulate", "--ask", EV, "--options", *LIKELY, "--slice", "sex=female", "--stimulus",
            "Charging is free for a year.", "--context-questions", "auto", "--context-k", "2", "--personas", "30",
            "--model", "tiny")
    code, out, _ = run(capsys, *argv, "--format", "json")
    assert code == 0
    result = json.loads(out)
    assert result["in_survey"] is False and result["question"] == "new_question" and result["question_text"] == EV
    assert result["options"] == list(LIKELY) and sum(result["simulated"].values()) == pytest.approx(1.0, abs=1e-5)
    assert result["real"] is None and result["metrics"] is None and result["noise_floor"] is None
    assert result["n_real"] == 0 and result["baselines"] == {} and len(result["context"]) == 2
    assert result["gaps"]["positive"] == "Very likely" and "other ordinal questions" in result["gaps"]["reference"]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "A new question: no respondent answered it, so there is no real distribution" in out
    assert "30 personas drawn from 1,296 in the slice, 0 real answers" in out


def test_ask_positive_last_puts_the_top_box_at_the_last_option(capsys):
    code, out, _ = run(capsys, "simulate", "--ask", EV, "--options", *LIKELY, "--positive", "last", "--model", "tiny",
                       "--format", "json")
    assert code == 0 and json.loads(out)["gaps"]["positive"] == "Not at all likely"


def test_ask_nominal_compares_option_shares(capsys):
    code, out, _ = run(capsys, "simulate", "--ask", "Which would you buy?", "--options", "Tesla", "Toyota", "Kia",
                       "--scale", "nominal", "--model", "tiny", "--format", "json")
    gaps = json.loads(out)["gaps"]
    assert code == 0 and gaps["type"] == "nominal" and gaps["measure"] == "share" and gaps["positive"] is None


def test_ask_in_generate_mode_has_no_real_distribution(capsys):
    code, out, _ = run(capsys, "simulate", "--ask", EV, "--options", *LIKELY, "--mode", "generate", "--personas", "4",
                       "--model", "tiny", "--format", "json")
    result = json.loads(out)
    assert code == 0 and result["mode"] == "generate" and result["in_survey"] is False
    assert result["real"] is None and result["noise_floor"] is None and result["n_personas"] == 4


def test_ask_with_a_pilot_file_combines_it_with_the_model(capsys, tmp_path):
    pilot = tmp_path / "pilot.csv"
    pilot.write_text("sex,answer\nfemale,Very likely\nmale,not at all likely\nfemale,Somewhat likely\n"
                     ",Very likely\n")
    code, out, _ = run(capsys, "simulate", "--ask", EV, "--options", *LIKELY, "--pilot", str(pilot), "--personas",
                       "20", "--no-gaps", "--model", "tiny", "--format", "json")
    assert code == 0
    block = json.loads(out)["pilot"]
    assert block["pilot_size"] == 4 and block["truth"] is None
    assert list(block["estimates"]["pilot"]["shares"]) == list(LIKELY)
    assert block["estimates"]["pilot"]["shares"]["Very likely"] == pytest.approx(0.5)


def test_drawn_personas_are_compared_with_the_whole_slice_unless_asked_otherwise(capsys):
    argv = ("simulate", "--question", "natenrgy", "--slice", "partyid=strong democrat", "--model", "tiny",
            "--no-gaps", "--no-baselines", "--format", "json")
    whole = json.loads(run(capsys, *argv)[1])
    drawn = json.loads(run(capsys, *argv, "--personas", "25")[1])
    only_drawn = json.loads(run(capsys, *argv, "--personas", "25", "--real-from-drawn")[1])
    assert drawn["real"] == whole["real"] and drawn["n_real"] == whole["n_real"] == 368
    assert drawn["real_from"] == "slice" and drawn["n_personas"] == 25 and drawn["n_slice"] == 379
    assert drawn["individual"]["n"] <= 25
    assert only_drawn["real_from"] == "drawn personas" and only_drawn["n_real"] <= 25
    assert only_drawn["real"] != whole["real"]
    code, out, _ = run(capsys, *argv[:-2], "--personas", "25")
    assert code == 0 and "25 personas drawn from 379 in the slice, 368 real answers (the whole slice's)" in out


def test_personas_and_real_from_drawn_are_documented_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "real distribution and its noise floor stay the whole slice's" in text
    assert "--real-from-drawn" in text and "--ask TEXT" in text


def test_long_option_labels_are_shown_whole_up_to_sixty_characters(capsys):
    fifty = "Somewhat likely, if a charger were close to my home"
    seventy = "Very likely, as long as the price came down below what I pay for my car"
    argv = ("simulate", "--ask", EV, "--options", seventy, fifty, "Not likely", "--personas", "3", "--no-gaps",
            "--model", "tiny")
    code, out, _ = run(capsys, *argv)
    assert code == 0
    rows = {line.split("  ")[0]: line for line in out.splitlines() if "%" in line}
    assert fifty in rows and seventy[:59] + "…" in rows and seventy not in out
    assert len({row.index("%") for row in rows.values()}) == 1  # the columns line up
    code, out, _ = run(capsys, *argv, "--format", "json")
    assert json.loads(out)["options"] == [seventy, fifty, "Not likely"]


def test_the_bare_model_warns_it_was_not_fine_tuned_on_the_survey(capsys):
    argv = ("simulate", "--question", "natspac", "--personas", "3", "--no-gaps", "--no-baselines", "--model", "tiny")
    code, out, _ = run(capsys, *argv, "--format", "json")
    assert code == 0 and len(json.loads(out)["warnings"]) == 1
    assert "not fine-tuned on gss2018 (no adapter)" in json.loads(out)["warnings"][0]
    code, out, _ = run(capsys, *argv)
    assert out.splitlines()[2].startswith("Warning: The model was not fine-tuned on gss2018")


def test_warnings_name_what_an_adapter_never_trained_on(gss, data_dir):
    from engine.ask_command import new_question, training_warnings
    from engine.surveys import load_survey

    adapter = Path(__file__).resolve().parents[1] / "assets" / "adapters" / "gss2018-smollm2"
    assert training_warnings(adapter, gss, gss.question("natspac")) == []
    [held_out] = training_warnings(adapter, gss, gss.question("natenrgy"))
    assert held_out.startswith("natenrgy was held out of the adapter gss2018-smollm2's training on gss2018")
    new, scale = training_warnings(adapter, gss, new_question(EV, list(LIKELY)))
    assert "trained on gss2018 but never on this new question" in new
    assert scale.startswith(f"The adapter gss2018-smollm2 never trained on a question with {len(LIKELY)} options "
                            "(it saw 3)")
    [new] = training_warnings(adapter, gss, new_question(EV, list(LIKELY)[:3]))
    assert "never on this new question" in new
    voters = load_survey("non-voters", data_dir)
    three = next(question for question in voters.questions if len(question.options) == 3)
    [other] = training_warnings(adapter, voters, three)
    assert "was not trained on non-voters" in other
    [bare] = training_warnings(None, gss, gss.question("natspac"))
    assert "not fine-tuned on gss2018" in bare


def test_a_new_question_is_built_as_the_dashboard_builds_one():
    from engine.ask_command import new_question
    from engine.surveys.model import Option, Question

    dashboard = Question(id="new_question", text=EV, type="ordinal",
                         options=tuple(Option((str(i),), label, float(i + 1)) for i, label in enumerate(LIKELY)),
                         positive="first")
    assert new_question(f"  {EV} ", [f" {label}" for label in LIKELY]) == dashboard
