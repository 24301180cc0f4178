"""`focusgroup train`: its options and the command, a thin client of `engine.training`.

    focusgroup train --survey gss2018 --method lora --out adapters/gss2018
    focusgroup train --surveys all --held-out-surveys gss2018 --out adapters/mixed

Every option fills one field of `engine.training.config.TrainConfig`, whose defaults the
help shows; the config refuses bad combinations (--survey with --surveys, a cap of 0) with
one line before any data or model is loaded.
"""

from __future__ import annotations

import argparse
import sys

from engine.training.config import MULTI_SURVEY_CAPS, OPTION_ORDERS, TrainConfig


def add_train_parser(commands) -> argparse.ArgumentParser:
    """The `train` subcommand on the CLI's subparsers (the caller adds --data-dir)."""
    train = commands.add_parser("train", help="fine-tune a LoRA or QLoRA adapter on the train split of one survey "
                                              "or several")
    data = train.add_argument_group("data")
    data.add_argument("--survey", help="survey id or spec file (default: gss2018)")
    data.add_argument("--surveys", nargs="+", metavar="SURVEY",
                      help="train one adapter on several surveys' train splits (ids, or `all`: every survey with "
                           "data); each keeps its own split and held-out questions; exclusive with --survey")
    data.add_argument("--held-out-surveys", nargs="+", default=[], metavar="SURVEY",
                      help="with --surveys: surveys that contribute nothing (a whole unseen survey)")
    data.add_argument("--held-out-questions", nargs="*",
                      help="questions never trained on (default: the survey's held-out set; one --survey only)")
    data.add_argument("--max-examples", type=int, help="train on at most this many examples in all")
    data.add_argument("--max-examples-per-survey", type=int,
                      help="at most this many examples of each survey (default: no cap for one survey, "
                           f"{MULTI_SURVEY_CAPS['max_examples_per_survey']:,} with --surveys)")
    data.add_argument("--max-examples-per-question", type=int,
                      help="at most this many examples of each question (default: no cap for one survey, "
                           f"{MULTI_SURVEY_CAPS['max_examples_per_question']:,} with --surveys)")
    data.add_argument("--split-seed", type=int, default=TrainConfig.split_seed,
                      help="seed of the 8:1:1 respondent split")

    model = train.add_argument_group("model")
    model.add_argument("--method", choices=("lora", "qlora"), default=TrainConfig.method,
                       help="lora, or qlora (4-bit NF4 base weights)")
    model.add_argument("--base-model", default=TrainConfig.base_model, help="`default` or a local model folder")
    model.add_argument("--rank", type=int, default=TrainConfig.rank, help="LoRA rank (default: %(default)s)")
    model.add_argument("--alpha", type=int, default=TrainConfig.alpha, help="LoRA alpha (default: %(default)s)")
    model.add_argument("--dropout", type=float, default=TrainConfig.dropout, help="LoRA dropout (default: %(default)s)")
    model.add_argument("--target-modules", nargs="+", default=list(TrainConfig.target_modules),
                       help="module names to adapt (default: all-linear)")
    model.add_argument("--warm-start", metavar="ADAPTER",
                       help="start from this trained adapter's weights (same rank, alpha and base; it must hold out "
                            "what this run holds out) instead of a fresh adapter")
    model.add_argument("--gradient-checkpointing", action="store_true", help="save memory, spend compute")

    objective = train.add_argument_group("objective")
    objective.add_argument("--numeric-loss-weight", type=float, default=TrainConfig.numeric_loss_weight,
                           help="W, weight of the numeric-distance term; 0 = plain cross-entropy (default: %(default)s)")
    objective.add_argument("--numeric-loss-width", type=float, default=TrainConfig.numeric_loss_width,
                           help="D, distance on the scale at which an answer earns nothing (default: %(default)s)")
    objective.add_argument("--distribution-loss-weight", type=float, default=TrainConfig.distribution_loss_weight,
                           help="L, weight of the KL between a slice's real distribution and its personas' mean "
                                "prediction, added at every step; 0 = off (default: %(default)s)")
    objective.add_argument("--slice-personas", type=int, default=TrainConfig.slice_personas,
                           help="personas scored per slice for that term (default: %(default)s)")
    objective.add_argument("--min-slice-respondents", type=int, default=TrainConfig.min_slice_respondents,
                           help="smallest slice (train respondents who answered) used as a target "
                                "(default: %(default)s)")
    objective.add_argument("--option-order", choices=OPTION_ORDERS, default=TrainConfig.option_order,
                           help="random: each batch shows its options in a drawn order (nominal shuffled, scales "
                                "reversed half the time); fixed: as the survey lists them (default: %(default)s)")
    objective.add_argument("--max-context", type=int, default=TrainConfig.max_context, metavar="K",
                           help="each example's persona carries 0 to K of the respondent's answers to other "
                                "questions (twins); 0 = plain personas (default: %(default)s)")

    loop = train.add_argument_group("loop")
    loop.add_argument("--out", required=True, help="folder for the adapter and its manifest")
    loop.add_argument("--epochs", type=float, default=TrainConfig.epochs,
                      help="passes over the examples (default: %(default)s)")
    loop.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    loop.add_argument("--lr", type=float, default=TrainConfig.learning_rate, help="learning rate (default: %(default)s)")
    loop.add_argument("--batch-size", type=int, default=TrainConfig.batch_size,
                      help="examples per step (default: %(default)s)")
    loop.add_argument("--eval-every", type=int, default=TrainConfig.eval_every,
                      help="steps between validation losses (default: %(default)s)")
    loop.add_argument("--eval-examples", type=int, default=TrainConfig.eval_examples,
                      help="validation examples, shared equally among the surveys (default: %(default)s)")
    loop.add_argument("--patience", type=int, default=TrainConfig.patience,
                      help="evaluations without improvement before stopping (default: %(default)s)")
    loop.add_argument("--seed", type=int, default=TrainConfig.seed)
    loop.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    return train


def train_config(args) -> TrainConfig:
    """The parsed options as a TrainConfig (which checks them)."""
    return TrainConfig(
        survey=args.survey, surveys=None if args.surveys is None else tuple(args.surveys),
        held_out_surveys=tuple(args.held_out_surveys), out=args.out, method=args.method,
        base_model=args.base_model, epochs=args.epochs, max_steps=args.max_steps, learning_rate=args.lr,
        batch_size=args.batch_size, rank=args.rank, alpha=args.alpha, dropout=args.dropout,
        target_modules=tuple(args.target_modules), numeric_loss_weight=args.numeric_loss_weight,
        numeric_loss_width=args.numeric_loss_width, distribution_loss_weight=args.distribution_loss_weight,
        slice_personas=args.slice_personas, min_slice_respondents=args.min_slice_respondents,
        option_order=args.option_order, max_context=args.max_context, warm_start=args.warm_start,
        held_out_questions=None if args.held_out_questions is None else tuple(args.held_out_questions),
        max_examples=args.max_examples, max_examples_per_question=args.max_examples_per_question,
        max_examples_per_survey=args.max_examples_per_survey, eval_every=args.eval_every,
        eval_examples=args.eval_examples, patience=args.patience, gradient_checkpointing=args.gradient_checkpointing,
        seed=args.seed, split_seed=args.split_seed, data_dir=args.data_dir,
    )


def run_train(args) -> None:
    """Train with a tqdm bar on stderr; one summary line on stdout."""
    from tqdm import tqdm

    from engine.training.trainer import train

    config = train_config(args)
    bars = []

    def report(progress) -> None:
        if not bars:
            bars.append(tqdm(total=progress.total_steps, desc="Training", unit="step", file=sys.stderr,
                             dynamic_ncols=True, initial=progress.step - 1))
        bar = bars[0]
        bar.update(progress.step - bar.n)
        shown = {"loss": f"{progress.loss:.3f}"}
        if progress.best_validation_loss is not None:
            shown["best_val"] = f"{progress.best_validation_loss:.3f}"
        bar.set_postfix(shown)

    manifest = train(config, report, resume=args.resume)
    if bars:
        bars[0].close()
    surveys = manifest.get("survey") or ", ".join(entry["id"] for entry in manifest["surveys"])
    print(f"Adapter written to {args.out}: {manifest['steps']} steps on {manifest['n_train_examples']} examples "
          f"of {surveys}, best validation loss {manifest['best_validation_loss']:.4f} at step "
          f"{manifest['best_step']}, {manifest['wall_seconds']:.0f} s.")
