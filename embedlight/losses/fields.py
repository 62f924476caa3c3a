"""The batch fields a loss reads, read once from its ``forward`` signature.

A loss is called as ``loss(query, docs, **fields)``: its ``forward`` takes the two embedding tensors,
then one keyword argument per :class:`~embedlight.data.batch.Batch` field it reads (a name from
:data:`~embedlight.data.batch.LOSS_FIELDS`; a parameter without a default is required). There is no
``**kwargs``: a misspelled keyword is a ``TypeError`` in the call, and a misspelled parameter name is
an error when the LightningModule is built. A loss that passes its fields on to an inner loss
(``matryoshka``) declares them with a ``batch_fields()`` method instead.
"""

from __future__ import annotations

import inspect

from torch import nn

from embedlight.data.batch import LOSS_FIELDS

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def batch_fields(loss: nn.Module) -> dict[str, bool]:
    """The batch fields ``loss`` reads, ``{name: required}``, in declaration order.

    Args:
        loss: A loss module (``forward(query, docs, <fields>)``, or a ``batch_fields()`` method).

    Raises:
        TypeError: ``forward`` takes ``*args``/``**kwargs`` or fewer than two inputs, or a declared
            field is not a batch field (the message lists the valid ones).
    """
    name = type(loss).__name__
    declared = getattr(loss, "batch_fields", None)
    if callable(declared):
        fields = dict(declared())
    else:
        params = list(inspect.signature(loss.forward).parameters.values())
        if len(params) < 2 or any(p.kind in _VARIADIC for p in params[:2]):
            raise TypeError(f"{name}.forward must take (query, docs, <batch fields>)")
        fields = {}
        for p in params[2:]:
            if p.kind in _VARIADIC:
                raise TypeError(
                    f"{name}.forward takes {'*' if p.kind is p.VAR_POSITIONAL else '**'}{p.name}: declare "
                    f"the batch fields it reads as keyword arguments (any of {', '.join(LOSS_FIELDS)})"
                )
            fields[p.name] = p.default is p.empty
    unknown = [f for f in fields if f not in LOSS_FIELDS]
    if unknown:
        raise TypeError(
            f"{name} reads batch field(s) {unknown} that a batch does not have; "
            f"batch fields: {', '.join(LOSS_FIELDS)}"
        )
    return fields
