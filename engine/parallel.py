"""Data-parallel scoring: several processes started by `accelerate launch` share the personas.

    accelerate launch --multi_gpu --num_processes 2 -m engine.cli evaluate --survey gss2018

Every process runs the same command and holds the whole model. Wherever the engine scores
personas (`engine.scoring.option_logits`), the processes first agree on which personas
none of them has cached (the union of their lists, in one order), each scores every
`size`-th of those, and the scores are gathered so that every process continues with all
of them: everything after scoring (metrics, baselines, tables) is computed identically
everywhere, and only the lead process (rank 0) prints. With one process, nothing changes
and nothing from `torch.distributed` is touched.

On CPUs the processes talk over gloo; give each `OMP_NUM_THREADS` = cores / processes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

from engine.errors import FocusgroupError


def world_size() -> int:
    """How many processes were launched together (1 outside `accelerate launch`)."""
    try:
        return max(int(os.environ.get("WORLD_SIZE", "1")), 1)
    except ValueError:
        return 1


def rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def join() -> None:
    """Join the process group once (accelerate sets it up from the launcher's environment)."""
    import torch
    import torch.distributed as distributed

    if distributed.is_available() and distributed.is_initialized():
        return
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes != world_size():
        raise FocusgroupError("Launched as one of several processes, but accelerate found no process group; "
                              "start data-parallel runs with `accelerate launch --num_processes N -m engine.cli ...`.")


def gathered(value) -> list:
    """`value` from every process, in rank order (any picklable object of the engine's own
    making: lists of hashes and arrays of scores, never data read from outside)."""
    import torch.distributed as distributed

    join()
    values = [None] * world_size()
    distributed.all_gather_object(values, value)
    return values


def shared_scoring(score: Callable[[list[str]], list[np.ndarray]], texts: dict[str, str]) -> dict[str, np.ndarray]:
    """Scores by key of the personas `texts` maps (hash -> persona line).

    One process: `score` runs on all of them. Several: every process must call this at the
    same point (even with nothing to score); each scores its share of the union of all
    their personas, and every process gets every score back."""
    if world_size() == 1:
        return dict(zip(texts, score(list(texts.values())))) if texts else {}
    union = {}
    for offered in gathered(texts):
        union.update(offered)
    mine = list(union)[rank()::world_size()]
    scores = score([union[key] for key in mine]) if mine else []
    merged = {}
    for keys, scored in gathered((mine, scores)):
        merged.update(zip(keys, scored))
    return merged


def silence_followers() -> None:
    """Every process but the lead writes its output to nowhere, so a launched command prints
    once."""
    if world_size() > 1 and rank() != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - held for the life of the process
