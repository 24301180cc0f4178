"""Checks of user-supplied numbers, shared by the command line and the engine's entry points,

argparse's `float` accepts "nan" and "inf" and its `int` accepts "-70"; numpy refuses a
negative seed with a traceback, and a count of a billion allocates gigabytes before anything
complains. Each check here raises `FocusgroupError` with one sentence naming the option and
the range it takes, so the command line can stop before any model work and a library caller
gets the same sentence.

    from engine.validation import check_range
    check_range(-70, "--personas", low=1)   # FocusgroupError: --personas must be at least 1, got -70.
"""

from __future__ import annotations

import math

from engine.errors import FocusgroupError
from engine.metrics import check_temperature

MAX_SEED = 2**32 - 1  # numpy takes any size, but torch.manual_seed and the manifests want 32 bits
MAX_SAMPLES = 100_000  # listed simulated respondents: about 100 bytes each in JSON

# Command-line options (argparse `dest` names) with bounds of their own: (smallest, largest).
OPTION_RANGES = {
    "personas": (1, None),
    "samples": (0, MAX_SAMPLES),
    "seed": (0, MAX_SEED),
    "split_seed": (0, MAX_SEED),
    "min_slice": (2, None),
}


def check_finite(value: float, name: str) -> None:
    """Refuse NaN and the infinities, which no setting of this engine means."""
    if isinstance(value, float) and not math.isfinite(value):
        raise FocusgroupError(f"{name} must be a finite number, got {value}.")


def bounds_phrase(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:,} and {high:,}"
    return f"at least {low:,}" if low is not None else f"at most {high:,}"


def check_range(value: float, name: str, low: float | None = None, high: float | None = None) -> None:
    """Refuse a value outside [low, high] (a bound of None is open), or not finite."""
    check_finite(value, name)
    if (low is not None and value < low) or (high is not None and value > high):
        raise FocusgroupError(f"{name} must be {bounds_phrase(low, high)}, got {value:,}.")


def check_seed(seed: int, name: str = "The seed") -> None:
    check_range(seed, name, 0, MAX_SEED)


def option_name(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def check_options(options: dict) -> None:
    """The command line's numbers, before any work: every float finite, every bounded
    option (OPTION_RANGES) in its range, the temperature one the metrics accept. Options a
    command does not have are skipped."""
    for dest, value in options.items():
        check_finite(value, option_name(dest))
    for dest, (low, high) in OPTION_RANGES.items():
        if options.get(dest) is not None:
            check_range(options[dest], option_name(dest), low, high)
    if options.get("temperature") is not None:
        check_temperature(options["temperature"])
