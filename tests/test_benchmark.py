"""`focusgroup benchmark scoring`: the engine, the bare model and generate-and-parse timed in one run."""

import json

from engine.cli import main


def test_benchmark_reports_engine_roofline_and_their_ratio(capsys):
    assert main(["benchmark", "scoring", "--model", "tiny", "--personas", "16", "--batch-size", "8",
                 "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_personas"] == 16 and result["batch_size"] == 8
    for rate in ("logit_per_s", "roofline_per_s", "generate_per_s"):
        assert result[rate] > 0
    # The rates are rounded to 2 decimals and the seconds to 3 (a tiny model takes milliseconds),
    # so the ratio is checked against the rates, relatively.
    ratio = result["logit_per_s"] / result["roofline_per_s"]
    assert abs(result["roofline_ratio"] - ratio) <= 0.01 * ratio + 0.001


def test_benchmark_table_names_the_roofline(capsys):
    assert main(["benchmark", "scoring", "--model", "tiny", "--personas", "8"]) == 0
    out = capsys.readouterr().out
    assert "bare model" in out and "of it" in out and "batches of 32" in out


def test_a_batch_size_of_zero_is_refused(capsys):
    assert main(["benchmark", "scoring", "--model", "tiny", "--personas", "8", "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err
