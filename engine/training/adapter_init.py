"""The LoRA adapter a run starts from: fresh, or a trained adapter's weights (`--warm-start`).

A warm start continues from an adapter already trained (the shipped general adapter, say) so
that a new objective (twins' context answers) costs a few hundred steps, not a full run. The
starting adapter is hostile input like any other: its config must name the same rank and
alpha as the run, its manifest the same base model, its weights must be finite safetensors
(never unpickled) covering every LoRA tensor of the run, and it must never have been trained
on a question or survey the run holds out; otherwise the held-out measurements would lie.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import FocusgroupError
from engine.models import ModelConfig, check_adapter_base, check_adapter_weights, read_json_object, read_manifest


def attach_adapter(model, config, held_out: dict[str, tuple[str, ...]] | None = None):
    """`model` wrapped with the run's LoRA adapter (rank, alpha, targets from `config`),
    filled from `config.warm_start` when set; `held_out` is the run's held-out questions by
    survey, checked against what the starting adapter trained on."""
    from peft import LoraConfig, get_peft_model

    targets = config.target_modules
    lora = LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, task_type="CAUSAL_LM",
        target_modules="all-linear" if targets == ("all-linear",) else list(targets),
    )
    try:
        model = get_peft_model(model, lora)
    except ValueError as error:
        raise FocusgroupError(f"Cannot place LoRA adapters: {error}") from None
    if config.warm_start is not None:
        load_warm_start(model, config, held_out or {})
    return model


def load_warm_start(model, config, held_out: dict[str, tuple[str, ...]]) -> None:
    """Copy the starting adapter's weights into `model`'s fresh adapter, after the checks
    in the module docstring."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(config.warm_start).expanduser()
    fix = "pass --warm-start a folder written by `focusgroup train` with the same --rank, --alpha and base model."
    settings = read_json_object(folder / "adapter_config.json", "The warm-start adapter config", fix)
    if (settings.get("r"), settings.get("lora_alpha")) != (config.rank, config.alpha):
        raise FocusgroupError(
            f"The warm-start adapter {folder} has rank {settings.get('r')} and alpha {settings.get('lora_alpha')}, "
            f"the run rank {config.rank} and alpha {config.alpha}: pass --rank {settings.get('r')} "
            f"--alpha {settings.get('lora_alpha')}, or start fresh."
        )
    base = Path(config.base_model).expanduser()
    check_adapter_base(folder, base, ModelConfig(base=config.base_model))
    check_trained_outside(folder, read_manifest(folder) or {}, held_out, config.held_out_surveys)
    weights_path = folder / "adapter_model.safetensors"
    if not weights_path.is_file():
        raise FocusgroupError(f"The warm-start adapter {folder} has no adapter_model.safetensors; {fix}")
    check_adapter_weights(folder)
    weights = load_file(str(weights_path))
    try:
        result = set_peft_model_state_dict(model, weights)
    except (RuntimeError, ValueError, KeyError) as error:
        raise FocusgroupError(f"The warm-start adapter {folder} does not fit this run's adapter ({error}); {fix}") \
            from None
    missing = [key for key in result.missing_keys if "lora_" in key]
    if result.unexpected_keys or missing:
        example = (list(result.unexpected_keys) + missing)[0]
        raise FocusgroupError(f"The warm-start adapter {folder} adapts other modules than this run "
                              f"(e.g. {example}): pass the same --target-modules it was trained with; {fix}")


def check_trained_outside(folder: Path, manifest: dict, held_out: dict[str, tuple[str, ...]],
                          held_out_surveys: tuple[str, ...]) -> None:
    """Refuse a starting adapter that trained on a survey or question this run holds out,
    or one whose manifest does not say what it trained on."""
    trained = {entry.get("id"): set(entry.get("held_out_questions") or ())
               for entry in manifest.get("surveys") or () if isinstance(entry, dict)}
    if "survey" in manifest:
        trained[manifest["survey"]] = set(manifest.get("held_out_questions") or ())
    if not trained:
        raise FocusgroupError(f"The warm-start adapter {folder} has no manifest saying which surveys it trained on, "
                              "so this run's held-out questions could not be trusted; warm-start from an adapter "
                              "written by `focusgroup train`.")
    for survey_id in held_out_surveys:
        if survey_id in trained:
            raise FocusgroupError(f"The warm-start adapter {folder} trained on {survey_id}, which this run holds out "
                                  "whole; warm-start from an adapter that held it out too.")
    for survey_id, questions in held_out.items():
        seen = sorted(set(questions) - trained.get(survey_id, set(questions)))
        if seen:
            raise FocusgroupError(f"The warm-start adapter {folder} trained on {survey_id}'s "
                                  f"{', '.join(seen)}, held out in this run; warm-start from an adapter that held "
                                  "them out too.")


__all__ = ["attach_adapter", "load_warm_start", "check_trained_outside"]
