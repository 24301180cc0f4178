"""Train: fine-tune a LoRA or QLoRA adapter on the chosen survey, in the background.

The job runs in a thread of the server process; its progress lives in `resources.JOBS`, so
the bar and the loss curve survive page reruns and reloads. A finished adapter appears in
the model picker.
"""

from __future__ import annotations

import datetime

import pandas as pd
import streamlit as st

from dashboard import charts, resources, state
from engine.training.config import TrainConfig

SECONDS_PER_STEP_CPU = 4.3  # measured: 32 examples per step with validation, SmolLM2-135M, 2-core CPU, bf16

survey, _, _ = state.sidebar_pickers()
st.title("Train an adapter")
st.caption(f"Fine-tunes SmolLM2-135M-Instruct on the **train split** of {survey.title}; validation-split loss "
           "picks the best checkpoint. Held-out questions are never trained on.")

gpu = resources.cuda_available()
with st.form("train"):
    left, right = st.columns(2)
    method = left.radio("Method", ["lora", "qlora"], horizontal=True,
                        help="QLoRA keeps the base model in 4-bit NF4: less memory, a little slower here.")
    steps = left.number_input(f"Steps ({TrainConfig.batch_size} examples each)", 10, 5000, 200, step=10)
    learning_rate = left.select_slider("Learning rate", [1e-4, 2e-4, 5e-4, 1e-3, 2e-3],
                                       value=TrainConfig.learning_rate)
    rank = right.select_slider("LoRA rank", [4, 8, 16, 32], value=TrainConfig.rank)
    numeric_weight = right.slider("Numeric-distance loss weight W (0 = cross-entropy only)", 0.0, 2.0,
                                  TrainConfig.numeric_loss_weight, 0.05)
    numeric_width = right.slider("Numeric-distance width D (scale steps)", 0.5, 4.0, TrainConfig.numeric_loss_width, 0.5)
    use_gpu = right.checkbox("Train on a CUDA GPU")
    minutes = steps * SECONDS_PER_STEP_CPU / 60
    st.caption(f"Estimated time on this machine's CPU: about {minutes:.0f} minutes "
               f"({SECONDS_PER_STEP_CPU:g} s per step measured on 2 cores).")
    submitted = st.form_submit_button("Start training", type="primary")

if submitted:
    if use_gpu and not gpu:
        st.info("This machine has no CUDA GPU, so training runs on the CPU. Untick the GPU option, or run "
                "`focusgroup train --method qlora` on a GPU machine and copy the adapter folder here.")
        st.stop()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = resources.trained_adapters_root() / f"{survey.id}-{method}-{stamp}"
    st.session_state[state.TRAIN_JOB] = resources.start_training(
        survey=survey.id, out=str(out), method=method, max_steps=int(steps), learning_rate=float(learning_rate),
        rank=int(rank), alpha=int(rank) * 2, numeric_loss_weight=float(numeric_weight),
        numeric_loss_width=float(numeric_width), data_dir=resources.data_dir())

job_id = st.session_state.get(state.TRAIN_JOB)
job = resources.JOBS.get(job_id) if job_id else None
if job is None:
    st.info("Set the options and press **Start training**. You can leave this page; training continues.")
    st.stop()


@st.fragment(run_every=2.0)
def show_job():
    current = resources.JOBS[job_id]
    progress = current["progress"]
    if current["error"]:
        st.error(current["error"])
        return
    if progress is None:
        st.progress(0.0, text="Loading the model and the training examples...")
        return
    share = progress.step / progress.total_steps
    eta = f", about {progress.eta_seconds / 60:.0f} min left" if not current["done"] else ""
    st.progress(share, text=f"Step {progress.step} of {progress.total_steps}{eta}")
    curve = pd.DataFrame(current["curve"])
    if not curve.empty:
        if "validation_loss" not in curve:
            curve["validation_loss"] = float("nan")
        st.plotly_chart(charts.loss_figure(curve), key="loss")
    if current["done"]:
        st.success(f"Adapter saved to {current['out']}. Pick it in the **Model** menu of the sidebar.")


show_job()
