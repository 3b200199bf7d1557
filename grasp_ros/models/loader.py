"""Load any world model from one string, and refuse a broken one at load time.

``load_world_model(spec)`` accepts, in this order:

1. a shipped model name (``'wall'``, ``'maze'``: see :func:`list_shipped_models`);
2. a file: a grasp_ros checkpoint written by ``grasp-ros-train`` (loaded with
   ``torch.load(..., weights_only=True)``, so no code in the file ever runs), or a TorchScript
   archive whose module has ``latent_shape`` and ``action_dim`` attributes and exports
   ``encode`` (and optionally ``decode`` / ``project``);
3. ``'package.module:factory'``: a function returning an ``nn.Module`` (for user models that
   need their own code, e.g. a DINO-WM encoder and predictor).

Every model is dry-run through :func:`check_world_model` before it is returned, so a wrong
shape or a NaN fails here with one message instead of deep inside a planner.
"""

from __future__ import annotations

import importlib
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from grasp_ros.models.base import WorldModel, check_world_model
from grasp_ros.models.patch import FORMAT as PATCH_FORMAT
from grasp_ros.models.patch import PatchWorldModel
from grasp_ros.models.reference import FORMAT, ReferenceWorldModel

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
#: The checkpoint formats grasp-ros-train writes, and the class each one rebuilds.
CHECKPOINT_CLASSES: dict[str, Any] = {FORMAT: ReferenceWorldModel, PATCH_FORMAT: PatchWorldModel}
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def list_shipped_models() -> list[str]:
    """Names of the checkpoints shipped inside the package (``['maze', 'wall']``)."""
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.pt"))


DEVICE_FORMS = "'auto', 'cpu', 'cuda' or 'cuda:N'"
_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


def check_device_name(device: str) -> str:
    """``device`` if it is one of :data:`DEVICE_FORMS`, else ValueError saying what is valid.

    torch's own parser accepts two dozen back ends and answers a typo with a RuntimeError
    listing them all; the planner is built and tested for these four forms only.
    """
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise ValueError(f"device={device!r} is not a device name: use {DEVICE_FORMS}")
    return device


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``'auto'``: CUDA when available, else CPU; ``'cpu'``, ``'cuda'``,
    ``'cuda:N'`` as given, if this machine has it (ValueError otherwise)."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = device if isinstance(device, torch.device) else torch.device(check_device_name(device))
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"device '{dev}' was requested but this torch build sees no CUDA GPU; "
                "use device 'auto' or 'cpu'"
            )
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device '{dev}' was requested but this machine has {count} CUDA GPU(s): "
                f"cuda:0 to cuda:{count - 1}"
            )
    return dev


def load_world_model(
    spec: str | os.PathLike[str],
    device: str | torch.device | None = None,
    image_size: tuple[int, int] | None = None,
) -> nn.Module:
    """Load, move to ``device``, check and return a world model in eval mode.

    Args:
        spec: a shipped name, ``'package.module:factory'``, or a checkpoint/TorchScript path.
        device: ``None``/``'auto'`` (CUDA if available, else CPU), or any torch device.
        image_size: ``(H, W)`` for the load-time dry run; default: the model's own
            ``image_size`` attribute, else 64 x 64.

    Raises:
        FileNotFoundError: ``spec`` names no shipped model, factory or existing file.
        ValueError: an invalid or absent device, or the file or factory does not give a
            working world model; the message names the problem (unreadable file, missing
            attribute, wrong shape, NaN output).
    """
    dev = resolve_device(device)
    model = _build(spec, dev).to(dev).eval()
    size = image_size or _image_size(model)
    try:
        check_world_model(model, size)
    except ValueError as exc:
        raise ValueError(f"world model {str(spec)!r} failed its load-time check: {exc}") from exc
    return model


def env_for_model(model: nn.Module | str, **env_kwargs: Any) -> Any:
    """The reference world a model was trained in, rendering images the model expects.

    ``model`` is a loaded model or a spec for :func:`load_world_model`; ``env_kwargs`` go to
    the environment (e.g. ``seed``). Raises ``ValueError`` for models not trained in one.
    """
    from grasp_ros.envs import make_env

    if isinstance(model, (str, os.PathLike)):
        model = load_world_model(model, device="cpu")
    name = getattr(model, "env_name", "")
    if not name:
        raise ValueError(
            f"{type(model).__name__} was not trained in a grasp_ros reference "
            "world (it has no env_name); build the environment yourself"
        )
    env_kwargs.setdefault("image_size", getattr(model, "image_size", 64))
    return make_env(name, **env_kwargs)


def _build(spec: str | os.PathLike[str], device: torch.device) -> nn.Module:
    text = os.fspath(spec)
    if text in list_shipped_models():
        return _load_file(CHECKPOINT_DIR / f"{text}.pt", device)
    path = Path(text).expanduser()
    if path.is_file():
        return _load_file(path, device)
    if _FACTORY.match(text):
        return _call_factory(text)
    shipped = ", ".join(repr(n) for n in list_shipped_models()) or "none installed"
    raise FileNotFoundError(
        f"no world model {text!r}: not a shipped model name ({shipped}), not an existing "
        "file, and not a 'package.module:factory' spec. Train one with `grasp-ros-train ENV` "
        "and pass the path of the .pt file it writes."
    )


def _load_file(path: Path, device: torch.device) -> nn.Module:
    if _is_torchscript(path):
        try:
            module = torch.jit.load(str(path), map_location=device)
        except Exception as exc:
            raise ValueError(f"cannot load TorchScript world model {path}: {exc}") from exc
        return _scripted(module, path)
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise ValueError(_unreadable(path, exc)) from None
    cls = CHECKPOINT_CLASSES.get(ckpt.get("format")) if isinstance(ckpt, dict) else None
    if cls is None:
        raise ValueError(
            f"{path} is not a grasp_ros world model checkpoint (expected a dict with format "
            f"one of {sorted(CHECKPOINT_CLASSES)}, as written by grasp-ros-train); for a bare "
            "state dict, write a 'package.module:factory' that builds the model and loads it"
        )
    try:
        return cls.from_checkpoint(ckpt)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"checkpoint {path} does not match {cls.__name__}: {exc}") from exc


def _unreadable(path: Path, exc: Exception) -> str:
    """Why torch could not load ``path``, without torch's advice to load it unsafely.

    torch answers a pickled object with "re-run with weights_only=False" (which would run
    whatever code the file names) and a damaged file with "please file an issue"; neither
    helps. A refused global means the file is a pickle of objects, anything else that the
    file is damaged or not a checkpoint.
    """
    text = str(exc)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if refused:
        return (
            f"cannot read world model checkpoint {path}: it holds objects other than tensors "
            f"({refused.group(1)}), which grasp_ros does not unpickle because that can run "
            "code. For a pickled nn.Module, write a 'package.module:factory' that builds the "
            "model and loads its weights"
        )
    detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    first = detail.group(1) if detail else " ".join(text.split(". ")[0].split())
    return (
        f"cannot read world model checkpoint {path}: it is corrupt or not a torch checkpoint "
        f"(cut short, damaged, or another kind of file; {type(exc).__name__}: {first[:200]}). "
        "Copy it again, or train one with grasp-ros-train ENV"
    )


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder; torch.save ones have none."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in name for name in z.namelist())


def _call_factory(spec: str) -> nn.Module:
    module_name, func_name = spec.split(":")
    try:
        factory = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import world model factory {spec!r}: {exc}") from exc
    try:
        model = factory()
    except Exception as exc:
        raise ValueError(f"world model factory {spec!r} raised: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"world model factory {spec!r} returned {type(model).__name__}, "
            "expected a torch.nn.Module"
        )
    return model


class ScriptedWorldModel(WorldModel):
    """A TorchScript module behind the WorldModel contract (attributes read from it)."""

    def __init__(self, module: torch.jit.ScriptModule) -> None:
        super().__init__(
            tuple(module.latent_shape),
            int(module.action_dim),
            getattr(module, "action_low", None),
            getattr(module, "action_high", None),
        )
        self.module = module
        self.image_size = getattr(module, "image_size", 64)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.module.encode(images)

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.module(latents, actions)


def _scripted(module: torch.jit.ScriptModule, path: Path) -> WorldModel:
    """Wrap ``module``; ``decode``/``project`` exist on the wrapper only if the module has them,
    so :func:`has_decoder` and :func:`has_projection` stay truthful."""
    for attr in ("latent_shape", "action_dim", "encode"):
        if not hasattr(module, attr):
            raise ValueError(
                f"TorchScript world model {path} has no '{attr}': keep latent_shape and "
                "action_dim as module attributes and mark encode with @torch.jit.export"
            )
    methods: dict[str, Any] = {}
    if hasattr(module, "decode"):
        methods["decode"] = lambda self, latents: self.module.decode(latents)
    if hasattr(module, "project"):
        methods["project"] = lambda self, latents: self.module.project(latents)
    return type("ScriptedWorldModel", (ScriptedWorldModel,), methods)(module)


def _image_size(model: nn.Module) -> tuple[int, int]:
    size = getattr(model, "image_size", 64)
    return (size, size) if isinstance(size, int) else tuple(size)
