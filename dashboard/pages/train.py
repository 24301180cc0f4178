"""Train: fine-tune a LoRA or QLoRA adapter on the chosen survey, in the background.

The job runs in a thread of the server process and lives in `resources.JOBS`, so its bar
and loss curve survive page switches, reloads and new tabs: a session with no job of its own
is shown the survey's running one. Times are measured, never assumed: before a run, from the
last run timed on this machine; during a run, from its own steps. A finished adapter appears
in the model picker.
"""

from __future__ import annotations

import datetime

import pandas as pd
import streamlit as st

from dashboard import charts, resources, state
from engine.errors import FocusgroupError
from engine.training.config import TrainConfig


def about(seconds: float) -> str:
    """A duration in words for an estimate: "less than a minute", "about 1 minute",
    "about 6 minutes", "about 2.5 hours"."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 90:
        return f"about {minutes} minute{'' if minutes == 1 else 's'}"
    return f"about {seconds / 3600:.1f} hours"


def estimate(pace: resources.Pace | None, steps: int) -> str:
    """The time a run of `steps` should take, from the speed last measured on this machine."""
    if pace is None:
        return ("No training has been timed on this machine yet, so there is no estimate: once the run starts, "
                "the bar shows the time left, measured from its own steps.")
    loading = f" and {pace.startup_seconds:.0f} s of loading" if pace.startup_seconds >= 1 else ""
    total = pace.startup_seconds + steps * pace.seconds_per_step
    return (f"{about(total).capitalize()} for {steps:,} step{'' if steps == 1 else 's'} on this machine: "
            f"{pace.seconds_per_step:.1f} s a step{loading}, as measured by {pace.source}.")


def progress_text(job: dict, progress) -> str:
    """The bar's text: the step, then the time left at the pace this job has measured."""
    text = f"Step {progress.step:,} of {progress.total_steps:,}"
    if job["done"]:
        return f"{text}: finished"
    pace = resources.job_pace(job)
    if pace is None:
        return f"{text}; the time left shows once a second step is timed"
    left = pace.seconds_per_step * (progress.total_steps - progress.step)
    return f"{text}, {about(left)} left ({pace.seconds_per_step:.1f} s a step, measured on this run)"


survey, _, _ = state.sidebar_pickers()
st.title("Train an adapter")
st.caption(f"Fine-tunes SmolLM2-135M-Instruct on the **train split** of {survey.title}; validation-split loss "
           "picks the best checkpoint. Held-out questions are never trained on.")

gpu = resources.cuda_available()
with st.form("train"):
    left, right = st.columns(2)
    method = left.radio("Method", ["lora", "qlora"], horizontal=True,
                        help="QLoRA keeps the base model in 4-bit NF4: less memory, a little slower here.")
    steps = left.number_input(f"Steps ({TrainConfig.batch_size} examples each)", min_value=1, max_value=5000,
                              value=200, step=1, key="train_steps")
    learning_rate = left.select_slider("Learning rate", [1e-4, 2e-4, 5e-4, 1e-3, 2e-3],
                                       value=TrainConfig.learning_rate)
    rank = right.select_slider("LoRA rank", [4, 8, 16, 32], value=TrainConfig.rank)
    numeric_weight = right.slider("Numeric-distance loss weight W (0 = cross-entropy only)", 0.0, 2.0,
                                  TrainConfig.numeric_loss_weight, 0.05)
    numeric_width = right.slider("Numeric-distance width D (scale steps)", 0.5, 4.0, TrainConfig.numeric_loss_width, 0.5)
    use_gpu = right.checkbox("Train on a CUDA GPU")
    st.caption(estimate(resources.measured_pace(), int(steps)))
    submitted = st.form_submit_button("Start training", type="primary")

if submitted:
    if use_gpu and not gpu:
        st.info("This machine has no CUDA GPU, so training runs on the CPU. Untick the GPU option, or run "
                "`focusgroup train --method qlora` on a GPU machine and copy the adapter folder here.")
        st.stop()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = resources.trained_adapters_root() / f"{survey.id}-{method}-{stamp}"
    try:
        config = resources.train_config(
            survey=survey.id, out=str(out), method=method, max_steps=int(steps), learning_rate=float(learning_rate),
            rank=int(rank), alpha=int(rank) * 2, numeric_loss_weight=float(numeric_weight),
            numeric_loss_width=float(numeric_width), data_dir=resources.data_dir())
    except FocusgroupError as error:
        st.error(str(error))
        st.stop()
    st.session_state[state.TRAIN_JOB] = resources.start_training(config)

# A session without a job of its own (a reload, a new tab) is shown the survey's running one.
job_id = st.session_state.get(state.TRAIN_JOB)
if job_id not in resources.JOBS:
    running = resources.running_jobs(survey.id)
    job_id = st.session_state[state.TRAIN_JOB] = running[0] if running else None
    if job_id is not None:
        started = datetime.datetime.fromtimestamp(resources.JOBS[job_id]["started_at"])
        others = f" ({len(running) - 1} more running)" if len(running) > 1 else ""
        st.caption(f"Showing the training of {survey.id} started at {started:%H:%M} on this server, still "
                   f"running{others}.")
if job_id is None:
    st.info("Set the options and press **Start training**. You can leave this page; training continues.")
    st.stop()


@st.fragment(run_every=2.0)
def show_job():
    job = resources.JOBS[job_id]
    progress = job["progress"]
    if job["error"]:
        st.error(job["error"])
        return
    if progress is None:
        st.progress(0.0, text="Loading the model and the training examples...")
        st.caption("Waiting for the first step: the loss curve draws once two steps have run.")
        return
    st.progress(progress.step / progress.total_steps, text=progress_text(job, progress))
    curve = pd.DataFrame(job["curve"])
    if len(curve) < 2:  # one point draws no line: say what there is instead of an empty chart
        st.caption(f"Step {progress.step} loss: {progress.loss:.3f}. The loss curve draws once two steps have run.")
    else:
        if "validation_loss" not in curve:
            curve["validation_loss"] = float("nan")
        st.plotly_chart(charts.loss_figure(curve), key="loss")
    if job["done"]:
        st.success(f"Adapter saved to {job['out']}. Pick it in the **Model** menu of the sidebar.")


show_job()
