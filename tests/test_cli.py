"""The command line: JSON shapes, and one clear line (no traceback) for every bad input."""

import json
import subprocess
import sys

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
