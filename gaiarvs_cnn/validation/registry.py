"""The one registry of validation comparisons.

A comparison is registered once, where it is implemented, with `register_comparison`:
its name, the reference kinds it needs (required) and uses when available (optional), its
place in the report and a one-line description. Everything else derives from the
registry: the report order and reference needs of `~gaiarvs_cnn.validation.runner`
(``run_validation``, ``needed_references``, and the ``COMPARISONS``,
``REQUIRED_REFERENCES``, ``OPTIONAL_REFERENCES`` views) and the choices of
``gaiarvs-cnn validate --against``.

The comparisons are registered when the modules of `COMPARISON_MODULES` are imported
(`comparisons` imports them on first use). A new comparison is a module that calls
`register_comparison` and is listed there.

Examples
--------
>>> from gaiarvs_cnn.validation.registry import comparison_names
>>> "galah" in comparison_names()   # doctest: +SKIP
True
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..exceptions import InputDataError

__all__ = ["Comparison", "register_comparison", "comparisons", "comparison_names",
           "get_comparison", "needed_references", "COMPARISON_MODULES"]

#: Modules whose import registers comparisons (the built-in ones, then the others).
COMPARISON_MODULES = ("gaiarvs_cnn.validation.runner", "gaiarvs_cnn.validation.published")


@dataclass(frozen=True)
class Comparison:
    """One registered comparison.

    Parameters
    ----------
    name : str
        Its name (``--against NAME``).
    run : callable
        ``run(data, references, bounds) -> ValidationResult``; ``references`` maps kind
        to Table (optional kinds may be absent), ``bounds`` is the Cramér-Rao callable or
        None.
    required, optional : tuple of str
        Reference kinds it cannot run without / uses when available.
    order : int
        Position in the report (ascending).
    description : str
        One line, for listings.
    """

    name: str
    run: Callable
    required: tuple = ()
    optional: tuple = ()
    order: int = 100
    description: str = ""


_REGISTRY: dict[str, Comparison] = {}
_LOADED = False


def register_comparison(name: str, *, required: Sequence[str] = (),
                        optional: Sequence[str] = (), order: int = 100,
                        description: str = "") -> Callable:
    """Decorator registering ``run(data, references, bounds)`` as comparison ``name``.

    Parameters
    ----------
    name : str
        The comparison's name; registering it twice with different functions is an error.
    required, optional : sequence of str
        Reference kinds needed / used when available.
    order : int
        Position in the report.
    description : str
        One line.

    Returns
    -------
    callable
        The decorator (returns the function unchanged).
    """
    def decorator(run: Callable) -> Callable:
        old = _REGISTRY.get(name)
        if old is not None and old.run.__qualname__ != run.__qualname__:
            raise ValueError(f"Comparison {name!r} is already registered by "
                             f"{old.run.__module__}.{old.run.__qualname__}.")
        _REGISTRY[name] = Comparison(name, run, tuple(required), tuple(optional), int(order),
                                     description)
        return run
    return decorator


def _load() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for module in COMPARISON_MODULES:
            importlib.import_module(module)


def comparisons() -> tuple[Comparison, ...]:
    """Every registered comparison, in report order.

    Returns
    -------
    tuple of Comparison
    """
    _load()
    return tuple(sorted(_REGISTRY.values(), key=lambda c: (c.order, c.name)))


def comparison_names() -> tuple[str, ...]:
    """The names of `comparisons`, in report order.

    Returns
    -------
    tuple of str
    """
    return tuple(c.name for c in comparisons())


def get_comparison(name: str) -> Comparison:
    """The comparison ``name``.

    Parameters
    ----------
    name : str

    Returns
    -------
    Comparison

    Raises
    ------
    InputDataError
        If no comparison has that name.
    """
    _load()
    if name not in _REGISTRY:
        raise InputDataError(f"Unknown comparison {name!r}; choose from "
                             f"{list(comparison_names())}.")
    return _REGISTRY[name]


def needed_references(against: Sequence[str], optional: bool = True) -> tuple[list, list]:
    """Reference kinds (required, optional) of a list of comparisons.

    Parameters
    ----------
    against : sequence of str
        Comparison names.
    optional : bool
        Also list the optional kinds.

    Returns
    -------
    required, optional : list of str

    Raises
    ------
    InputDataError
        If a name is not a registered comparison.
    """
    chosen = [get_comparison(a) for a in against]
    req = sorted({k for c in chosen for k in c.required})
    opt = sorted({k for c in chosen for k in c.optional} - set(req))
    return req, (opt if optional else [])
