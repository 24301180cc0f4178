"""Fine-tuning settings: one typed, validated object filled by the CLI (and the dashboard)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.errors import FocusgroupError
from engine.twins import MAX_CONTEXT
from engine.validation import check_finite, check_seed

METHODS = ("lora", "qlora")
OPTION_ORDERS = ("random", "fixed")
DEFAULT_SURVEY = "gss2018"
ALL_SURVEYS = "all"
# Caps that apply when training on several surveys and none is given. Chosen so that one
# epoch over the seven shared surveys is 27,028 examples (six at 4,000, steak at 3,028) in
# 930 batches, about an hour on the 2-core CPU: the shipped gss2018 run took 4.3 s a step of
# 32, and a mixed step, with shorter prompts (1,240 tokens a step against 1,416) and batches
# of 29 on average, measured about 0.8 of a gss2018 step side by side. The question cap
# (1,000) spreads a survey's draw over its questions, so the 5,836-respondent non-voters (76
# trained questions, 347,512 answers) weighs as much as gss2018 and no more.
MULTI_SURVEY_CAPS = {"max_examples_per_survey": 4000, "max_examples_per_question": 1000}
# The float settings and their options: each must be finite (argparse reads "nan" and "inf").
FLOAT_OPTIONS = {"epochs": "--epochs", "learning_rate": "--lr", "dropout": "--dropout",
                 "numeric_loss_weight": "--numeric-loss-weight", "numeric_loss_width": "--numeric-loss-width",
                 "distribution_loss_weight": "--distribution-loss-weight"}


@dataclass(frozen=True)
class TrainConfig:
    """How to fine-tune a model on the train split of one survey or of several.

    survey: survey id or spec path (None, with no `surveys`: gss2018).
    surveys: train one adapter on several surveys' train splits at once (ids, or ("all",):
        every listed survey with data; `engine.training.mixture.resolve_surveys` expands it
        before the run); exclusive with `survey`. Each survey keeps its own 8:1:1 split and
        its default held-out questions.
    held_out_surveys: with `surveys`, surveys that contribute nothing (a whole unseen survey).
    out: folder for the adapter and its manifest.
    method: "lora" (full-precision base) or "qlora" (4-bit NF4 base, double quantisation).
    base_model: "default" (embedded SmolLM2-135M-Instruct) or a local model folder.
    epochs: passes over the training examples (the paper found 1 best).
    max_steps: stop after this many optimiser steps (None: run the epochs).
    learning_rate, batch_size: AdamW step size; examples per step (one question per batch,
        so the question's prompt prefix runs once per step).
    rank, alpha, dropout, target_modules: the LoRA adapter; "all-linear" adapts every
        linear layer but the output head. Dropout defaults to 0: one epoch barely overfits,
        and on a CPU the dropout masks cost a quarter of each step.
    numeric_loss_weight (W), numeric_loss_width (D): the numeric-distance term
        (`engine.training.loss`); W = 0 is plain cross-entropy.
    distribution_loss_weight (L): with L > 0 each step also scores personas of one
        single-field slice of its question and adds L x KL(slice's real distribution ||
        their mean predicted distribution) (`engine.training.distribution`); 0 is off.
    slice_personas, min_slice_respondents: how many personas a slice batch scores; the
        smallest slice (train respondents who answered) used as a target.
    max_context: each training example's persona carries K of the respondent's answers to
        other questions, K drawn from 0 to this per batch (`engine.twins.TrainingContexts`), so the
        adapter serves twins and plain personas; 0 = plain personas only. Validation batches
        carry context answers the same way, drawn once.
    warm_start: an adapter folder whose weights the run starts from instead of a fresh
        adapter (`engine.training.adapter_init`); None starts fresh.
    option_order: "fixed" (the default) shows the options as the survey lists them, as
        `simulate` and `evaluate` do; "random" shows each training batch's options in a drawn
        order (nominal: any permutation; ordinal and numeric: the scale reversed half the
        time), so the model cannot learn letter positions. Across six surveys the fixed order
        measured far closer on every group of questions, unseen ones included (README, "The
        general adapter"): a 135M model shown both directions of a scale learns neither.
    held_out_questions: questions never trained on (None: the survey's default set; one
        survey only).
    max_examples: train on at most this many examples in all, drawn with the seed.
    max_examples_per_question, max_examples_per_survey: caps drawn with the seed, questions
        first (None: uncapped for one survey; MULTI_SURVEY_CAPS with `surveys`).
    eval_every, eval_examples, patience: validation loss every `eval_every` steps on up to
        `eval_examples` validation examples (shared equally among the surveys); stop after `patience` evaluations without a
        new best; the best adapter is the one kept.
    gradient_checkpointing: trade compute for memory (QLoRA on large models).
    seed, split_seed: example order and LoRA initialisation; the 8:1:1 respondent split.
    """

    survey: str | None = None
    surveys: tuple[str, ...] | None = None
    held_out_surveys: tuple[str, ...] = ()
    out: str = ""
    method: str = "lora"
    base_model: str = "default"
    epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float = 1e-3
    batch_size: int = 32
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("all-linear",)
    numeric_loss_weight: float = 0.25
    numeric_loss_width: float = 2.0
    distribution_loss_weight: float = 0.0
    slice_personas: int = 16
    min_slice_respondents: int = 30
    option_order: str = "fixed"
    max_context: int = 0
    warm_start: str | None = None
    held_out_questions: tuple[str, ...] | None = None
    max_examples: int | None = None
    max_examples_per_question: int | None = None
    max_examples_per_survey: int | None = None
    eval_every: int = 100
    eval_examples: int = 512
    patience: int = 3
    gradient_checkpointing: bool = False
    seed: int = 0
    split_seed: int = 0
    data_dir: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if not self.out:
            raise FocusgroupError("Training needs an output folder: pass --out DIR.")
        self.check_surveys()
        if self.method not in METHODS:
            raise FocusgroupError(f"Unknown method {self.method!r}; use lora or qlora.")
        if self.method == "qlora" and self.base_model == "tiny":
            raise FocusgroupError("--method qlora needs real weights to quantise, and the tiny test model is built "
                                  "in full precision: use --method lora, or --base-model default or a model folder.")
        for name, option in FLOAT_OPTIONS.items():
            check_finite(getattr(self, name), option)
        check_seed(self.seed, "--seed")
        check_seed(self.split_seed, "--split-seed")
        checks = [
            (self.epochs > 0, "--epochs must be positive"),
            (self.max_steps is None or self.max_steps > 0, "--max-steps must be positive"),
            (self.learning_rate > 0, "--lr must be positive"),
            (self.batch_size > 0, "--batch-size must be positive"),
            (self.rank > 0 and self.alpha > 0, "--rank and --alpha must be positive"),
            (0 <= self.dropout < 1, "--dropout must be in [0, 1)"),
            (self.numeric_loss_weight >= 0, "--numeric-loss-weight must be zero or positive"),
            (self.numeric_loss_width > 0, "--numeric-loss-width must be positive"),
            (self.distribution_loss_weight >= 0, "--distribution-loss-weight must be zero or positive"),
            (self.slice_personas > 0, "--slice-personas must be positive"),
            (self.min_slice_respondents > 0, "--min-slice-respondents must be positive"),
            (self.option_order in OPTION_ORDERS, "--option-order must be random or fixed"),
            (0 <= self.max_context <= MAX_CONTEXT, f"--max-context must be between 0 and {MAX_CONTEXT}"),
            (self.warm_start is None or (Path(self.warm_start).expanduser() / "adapter_config.json").is_file(),
             f"--warm-start {self.warm_start} is not an adapter folder (no adapter_config.json)"),
            (self.max_examples is None or self.max_examples > 0, "--max-examples must be positive"),
            (self.max_examples_per_question is None or self.max_examples_per_question > 0,
             "--max-examples-per-question must be positive"),
            (self.max_examples_per_survey is None or self.max_examples_per_survey > 0,
             "--max-examples-per-survey must be positive"),
            (self.eval_every > 0 and self.eval_examples > 0, "--eval-every and --eval-examples must be positive"),
            (self.patience > 0, "--patience must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise FocusgroupError(message + ".")

    def check_surveys(self) -> None:
        """One survey or a list, never both; the multi-survey caps filled in when not given."""
        if self.surveys is None:
            if self.held_out_surveys:
                raise FocusgroupError("--held-out-surveys needs --surveys: a single --survey has no other survey "
                                      "to hold out.")
            if self.survey is None:
                object.__setattr__(self, "survey", DEFAULT_SURVEY)
            return
        if self.survey is not None:
            raise FocusgroupError(f"Pass --survey or --surveys, not both (got --survey {self.survey} and --surveys "
                                  f"{' '.join(self.surveys)}).")
        if not self.surveys:
            raise FocusgroupError("--surveys needs at least one survey id, or all.")
        if ALL_SURVEYS in self.surveys and len(self.surveys) > 1:
            raise FocusgroupError("--surveys all stands alone: it already names every survey.")
        if self.held_out_questions is not None:
            raise FocusgroupError("--held-out-questions names questions of one --survey; with --surveys each survey "
                                  "holds out its own default set (hold out a whole survey with --held-out-surveys).")
        object.__setattr__(self, "surveys", tuple(dict.fromkeys(self.surveys)))
        object.__setattr__(self, "held_out_surveys", tuple(dict.fromkeys(self.held_out_surveys)))
        for name, cap in MULTI_SURVEY_CAPS.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, cap)

    @property
    def multi_survey(self) -> bool:
        return self.surveys is not None

    def hyperparameters(self) -> dict:
        """Everything that defines the run (the data directory is where, not what)."""
        values = asdict(self)
        values.pop("data_dir")
        values.pop("out")
        return json.loads(json.dumps(values))  # as stored in a manifest: tuples become lists
