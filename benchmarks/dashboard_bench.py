"""Dashboard performance: first simulation of a 200-persona slice, and a temperature
re-draw (numbers + figure) for a 1,000-persona slice, with the default model.

    .venv/bin/python benchmarks/dashboard_bench.py [--adapter DIR | --base]

The first simulation is timed with an empty logit cache (a temporary one), model already
loaded, baselines included: what a user waits for after pressing Simulate. The re-draw is
what moving the temperature slider costs: `Simulation.at(T)` plus building the figure and
serialising it for the browser, timed over 20 temperatures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import engine.scoring as scoring
from dashboard import charts
from engine.metrics import effective_sample_size
from engine.models import ModelConfig, load_model, shipped_adapter
from engine.simulate import simulate
from engine.surveys import load_survey


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter")
    parser.add_argument("--base", action="store_true")
    args = parser.parse_args()
    survey = load_survey("gss2018")
    adapter = None if args.base else (args.adapter or shipped_adapter(survey.id))
    loaded = load_model(ModelConfig(adapter=None if adapter is None else str(adapter)))

    with tempfile.TemporaryDirectory() as folder:
        scoring._default_store = scoring.LogitStore(Path(folder))
        started = time.perf_counter()
        first = simulate(loaded, survey, "natenrgy", {}, n_personas=200, seed=1)
        first_seconds = time.perf_counter() - started

        large = simulate(loaded, survey, "natspac", {}, n_personas=1000, seed=2, with_baselines=False)
    band = charts.noise_band(large.real, effective_sample_size(large.weights[large.answers != -1]))
    timings = []
    for temperature in np.linspace(0, 2, 20):
        started = time.perf_counter()
        snapshot = large.at(float(temperature))
        frame = charts.distribution_frame(large.question.labels, snapshot.simulated, large.real, band)
        charts.distribution_figure(frame, large.question.text, "benchmark").to_json()
        timings.append(time.perf_counter() - started)
    print(json.dumps({
        "model": loaded.config.name,
        "first_simulation_200_personas_s": round(first_seconds, 2),
        "first_simulation_personas": first.n_personas,
        "redraw_1000_personas_median_ms": round(1000 * float(np.median(timings)), 1),
        "redraw_1000_personas_max_ms": round(1000 * float(np.max(timings)), 1),
        "redraw_personas": large.n_personas,
    }, indent=2))


if __name__ == "__main__":
    main()
