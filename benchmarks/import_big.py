"""Time `focusgroup import` and the load that follows on a big SPSS file (100,000
respondents x 500 variables by default).

Builds the file with pyreadstat in a temporary folder (row-compressed, as SPSS saves:
labelled 5-point questions with a user-missing code, labelled demographics, a numeric
age, a fractional weight, an id and a free-text column), then runs each step in a process
of its own, so that each peak resident set size (resource.getrusage) is that step's
alone (the parent stays small, since a child starts with its parent's peak), with its
wall and CPU seconds (CPU time, the process's whole life, is steadier on a shared machine): `import`
proposes the spec (metadata, then value counts in row chunks), `load`
reads the survey through that spec (only its columns, in row chunks).

    .venv/bin/python benchmarks/import_big.py [--rows 100000] [--columns 500]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = ("build", "import", "load")
AGREE = {1: "Strongly agree", 2: "Agree", 3: "Neither agree nor disagree", 4: "Disagree", 5: "Strongly disagree",
         9: "Refused"}


def build(path: Path, rows: int, columns: int) -> None:
    """The test file: its columns beyond the six fixed ones are 5-point agreement questions."""
    import numpy as np
    import pandas as pd
    import pyreadstat

    rng = np.random.default_rng(0)
    frame = {"id": np.arange(1, rows + 1, dtype=np.float64), "age": rng.integers(18, 90, rows).astype(np.float64),
             "sex": rng.integers(1, 3, rows).astype(np.float64), "region": rng.integers(1, 5, rows).astype(np.float64),
             "wt": rng.uniform(0.2, 3.0, rows).round(4),
             "comment": np.where(rng.random(rows) < 0.3, [f"remark {i}" for i in range(rows)], "")}
    questions = [f"q{number}" for number in range(1, columns - len(frame) + 1)]
    for name in questions:
        frame[name] = rng.choice([1, 2, 3, 4, 5, 9], rows, p=[0.2, 0.3, 0.2, 0.15, 0.1, 0.05]).astype(np.float64)
    labels = {"sex": {1: "Male", 2: "Female"}, "region": {1: "North", 2: "South", 3: "East", 4: "West"}}
    pyreadstat.write_sav(
        pd.DataFrame(frame), path, row_compress=True, file_label="Big tracker",
        column_labels={"age": "Age in years", "sex": "Sex", "region": "Region", "wt": "Weight",
                       "comment": "Anything else?",
                       **{name: f"Agree or disagree: statement {name}" for name in questions}},
        variable_value_labels={**labels, **{name: AGREE for name in questions}},
        missing_ranges={name: [9] for name in questions},
        variable_measure={"sex": "nominal", "region": "nominal", "age": "scale",
                          **{name: "ordinal" for name in questions}},
    )


def step(name: str, data: Path, spec: Path, rows: int, columns: int) -> dict:
    """One step, timed, in this process."""
    started = time.perf_counter()
    if name == "build":
        build(data, rows, columns)
        detail = f"{rows:,} rows x {columns} columns, {data.stat().st_size / 2**20:.0f} MB"
    elif name == "import":
        from engine.surveys.importing import import_survey

        proposal = import_survey(data, spec, force=True)
        detail = f"{proposal.fields} fields, {proposal.questions} questions"
    else:
        from engine.surveys.spec import survey_from_spec

        survey = survey_from_spec(spec, None)
        detail = f"{survey.n_respondents:,} respondents x {len(survey.questions)} questions"
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)  # the whole process: interpreter and imports included
    return {"step": name, "seconds": round(seconds, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "detail": detail}  # ru_maxrss is in kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=500)
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # a child process: one step
        print(json.dumps(step(args.step, args.data, args.data.with_suffix(".toml"), args.rows, args.columns)))
        return
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "big.sav"
        for name in STEPS:
            child = subprocess.run([sys.executable, __file__, "--step", name, "--data", str(data), "--rows",
                                    str(args.rows), "--columns", str(args.columns)],
                                   capture_output=True, text=True, check=True)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"{name:<7}{result['seconds']:>7.1f} s wall {result['cpu_seconds']:>6.1f} s CPU  peak RSS "
                  f"{result['peak_rss_mb']:>5} MB  ({result['detail']})")


if __name__ == "__main__":
    main()
