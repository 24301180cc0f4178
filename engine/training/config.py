"""Fine-tuning settings: one typed, validated object filled by the CLI (and the dashboard)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from engine.errors import FocusgroupError
from engine.validation import check_finite, check_seed

METHODS = ("lora", "qlora")
# The float settings and their options: each must be finite (argparse reads "nan" and "inf").
FLOAT_OPTIONS = {"epochs": "--epochs", "learning_rate": "--lr", "dropout": "--dropout",
                 "numeric_loss_weight": "--numeric-loss-weight", "numeric_loss_width": "--numeric-loss-width"}


@dataclass(frozen=True)
class TrainConfig:
    """How to fine-tune a model on a survey's train split.

    survey: survey id or spec path. out: folder for the adapter and its manifest.
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
    held_out_questions: questions never trained on (None: the survey's default set).
    max_examples: train on at most this many examples, drawn with the seed.
    eval_every, eval_examples, patience: validation loss every `eval_every` steps on up to
        `eval_examples` validation examples; stop after `patience` evaluations without a
        new best; the best adapter is the one kept.
    gradient_checkpointing: trade compute for memory (QLoRA on large models).
    seed, split_seed: example order and LoRA initialisation; the 8:1:1 respondent split.
    """

    survey: str = "gss2018"
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
    held_out_questions: tuple[str, ...] | None = None
    max_examples: int | None = None
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
            (self.max_examples is None or self.max_examples > 0, "--max-examples must be positive"),
            (self.eval_every > 0 and self.eval_examples > 0, "--eval-every and --eval-examples must be positive"),
            (self.patience > 0, "--patience must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise FocusgroupError(message + ".")

    def hyperparameters(self) -> dict:
        """Everything that defines the run (the data directory is where, not what)."""
        values = asdict(self)
        values.pop("data_dir")
        values.pop("out")
        return json.loads(json.dumps(values))  # as stored in a manifest: tuples become lists
