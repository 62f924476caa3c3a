"""The one registration path for embedlight components.

Every backbone, pooler, loss and evaluator is a class decorated with ``@register(group, name)``. The decorator
stores a Hydra structured config for it in Hydra's ``ConfigStore`` (``_target_`` plus the defaults of
its ``__init__`` signature), so ``pooler=mean`` or ``loss=infonce loss.temperature=0.05`` work on the
command line with no YAML file per component.

Group contracts:

* ``backbone``: a subclass of :class:`embedlight.backbones.base.Backbone` (Hugging Face models:
  :class:`embedlight.backbones.hf_base.HFBackbone`), which declares everything callers read:
  ``forward(input_ids, attention_mask) -> (B, L, H)`` hidden states, ``hidden_size``,
  ``tokenizer``, ``padding_side``, ``append_eos`` (whether [EOS] is appended to every input),
  ``layer_classes`` (its transformer-layer classes, the FSDP wrap and activation-checkpointing
  units), ``flop_model()`` and ``save_pretrained(dir, padding_side=None)``. Bundled short names
  (``all-MiniLM-L6-v2``, ``smollm2``) are listed in :mod:`embedlight.backbones.bundled`.
* ``pooler``: an ``nn.Module`` with ``bind(hidden_size)`` (builds an optional projection head),
  ``out_dim`` and ``forward(hidden (B, L, H), attention_mask (B, L), instruction_mask (B, L) | None)
  -> (B, D)``.
* ``loss``: an ``nn.Module`` with ``forward(query (B, D), docs (B*G, D), <batch fields>) -> scalar``;
  rows ``docs[i*G:(i+1)*G]`` belong to query ``i`` and the first of them is its positive. The batch
  fields it reads are its keyword arguments, named as the fields of
  :class:`~embedlight.data.batch.Batch` (``labels`` for scored pairs, ``in_batch_negatives``,
  ``query_hash``/``doc_hash``, ``teacher_scores``); a parameter without a default is required. No
  ``**kwargs``: the module passes exactly the declared fields, and an unknown field or keyword
  fails (:mod:`embedlight.losses.fields`). A loss that trains prefixes of the embedding
  (``matryoshka``) reports them with ``trained_dims(embedding_size)``: the export records them and
  evaluation reports each.
* ``evaluator``: an :class:`~embedlight.evaluation.base.Evaluator` with a ``name`` and
  ``__call__(encoder) -> {"<name>/<metric>": float}`` for any
  :class:`~embedlight.evaluation.base.TextEncoder`; its benchmark is read from disk lazily, on the
  first call (a missing file fails at construction). Built from config with ``_target_``
  (``conf/evaluation`` presets) or from the registry (``+evaluator@evaluation.<key>=<name>``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

T = TypeVar("T")

GROUPS: dict[str, str] = {
    "backbone": "transformer that maps token ids to hidden states; owns its tokenizer",
    "pooler": "maps hidden states to one vector per text",
    "loss": "maps query and document embeddings to a scalar training loss",
    "evaluator": "scores a text encoder on a benchmark: {'<name>/<metric>': float}",
}

_REGISTRY: dict[str, dict[str, type]] = {g: {} for g in GROUPS}

_SIMPLE = (int, float, str, bool, type(None))


def _default_node(cls: type) -> dict[str, Any]:
    """Build the structured-config dict of ``cls``: ``_target_`` plus its simple ``__init__`` defaults."""
    node: dict[str, Any] = {"_target_": f"{cls.__module__}.{cls.__qualname__}"}
    for pname, param in inspect.signature(cls.__init__).parameters.items():
        if pname == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = param.default
        if default is inspect.Parameter.empty:
            node[pname] = MISSING
        elif isinstance(default, _SIMPLE):
            node[pname] = default
        elif isinstance(default, (list, tuple)) and all(isinstance(v, _SIMPLE) for v in default):
            node[pname] = list(default)
        # anything else (modules, callables) is injected by the caller and left out of the config
    return node


def register(group: str, name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator that registers a component under ``group/name`` in Hydra's ConfigStore.

    Args:
        group: One of :data:`GROUPS`.
        name: The short name used in configs (``pooler=mean``).

    Returns:
        The decorator; it returns the class unchanged.
    """
    if group not in GROUPS:
        raise ValueError(f"unknown registry group {group!r}; valid groups: {sorted(GROUPS)}")

    def decorator(cls: type[T]) -> type[T]:
        existing = _REGISTRY[group].get(name)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"{group}/{name} is already registered by {existing.__module__}.{existing.__qualname__}"
            )
        _REGISTRY[group][name] = cls
        ConfigStore.instance().store(group=group, name=name, node=_default_node(cls))
        return cls

    return decorator


COMPONENT_PACKAGES = (
    "embedlight.backbones",
    "embedlight.poolers",
    "embedlight.losses",
    "embedlight.evaluation",
)

# Modules of those packages that need an optional extra and register nothing: not imported by discovery
OPTIONAL_MODULES = frozenset({"embedlight.evaluation.mteb_bridge"})  # needs embedlight[mteb]


def _load_all() -> None:
    """Import every module of the component packages so that their decorators have run.

    A new pooler, loss or evaluator is one file dropped into its package: it is discovered here, no
    list to edit.
    """
    for package_name in COMPONENT_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            module = f"{package_name}.{info.name}"
            if module not in OPTIONAL_MODULES:
                importlib.import_module(module)


def registered(group: str) -> dict[str, type]:
    """Return ``{name: class}`` for a registry group."""
    _load_all()
    if group not in _REGISTRY:
        raise KeyError(f"unknown registry group {group!r}; valid groups: {sorted(GROUPS)}")
    return dict(_REGISTRY[group])


def get(group: str, name: str) -> type:
    """Look up a registered class, failing with the list of valid names."""
    entries = registered(group)
    if name not in entries:
        raise KeyError(f"unknown {group} {name!r}; registered {group} names: {', '.join(sorted(entries))}")
    return entries[name]


def build(group: str, name: str, **kwargs: Any) -> Any:
    """Instantiate ``group/name`` with its defaults overridden by ``kwargs``."""
    return get(group, name)(**kwargs)


def describe(groups: str | Sequence[str] | None = None) -> str:
    """Every registered component of ``groups`` (default: all) with its config defaults, as text
    (what ``embedlight-registry`` prints).

    Raises:
        ValueError: A group that is not one of :data:`GROUPS` (the message lists the valid ones).
    """
    _load_all()
    groups = [groups] if isinstance(groups, str) else list(groups or sorted(GROUPS))
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown group {unknown[0]!r}; valid groups: {', '.join(sorted(GROUPS))}")
    lines = []
    for group in groups:
        lines.append(f"{group}: {GROUPS[group]}")
        for name, cls in sorted(_REGISTRY[group].items()):
            node = _default_node(cls)
            target = node.pop("_target_")
            args = ", ".join(f"{k}={v!r}" for k, v in node.items())
            doc = (inspect.getdoc(cls) or "").split("\n")[0]
            lines.append(f"  {name:<16} {doc}\n  {'':<16} {target}({args})")
    return "\n".join(lines)
