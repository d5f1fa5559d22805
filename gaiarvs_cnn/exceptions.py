"""Exception classes of gaiarvs-cnn. Messages say what is wrong and what to do.

Errors carry structure, not only text: each knows, where it applies, the input it is about
(``file``, ``source_id``, ``column``) and the library parameter whose value would fix it
(``parameter``). Advice that names a parameter or a function of the library is written
with `Param` and `Call` parts: ``str(error)`` spells them as Python (``overwrite=True``,
``simulate_store(..., kind='training')``), and `GaiaRVSCNNError.render` lets another front
end spell them its own way -- the command line writes its flags (``--overwrite``) and
commands (``'gaiarvs-cnn simulate --kind training'``), found from its own option metadata,
so that no message text is ever rewritten.

>>> from gaiarvs_cnn.exceptions import OutputExistsError
>>> err = OutputExistsError("sim.h5", what="store")
>>> str(err)
'store sim.h5 exists; pass overwrite=True to replace it.'
>>> err.parameter, err.file
('overwrite', 'sim.h5')
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Param", "Call", "Part", "GaiaRVSCNNError", "InputDataError", "BadStarError",
           "StoreError", "DuplicateSourceError", "ModelBundleError", "ArchiveError",
           "OutputExistsError", "StoreExistsError"]

#: No value given (`Param`).
_UNSET: Any = type("_Unset", (), {"__repr__": lambda self: "<unset>"})()


class Param:
    """A library parameter named in an error message.

    Parameters
    ----------
    name : str
        The parameter's name in the library (``"overwrite"``, ``"store"``).
    value : object, optional
        The value to pass (``True``, ``"skip"``); written with `repr` in Python spelling.
    placeholder : str, optional
        A stand-in for a value the user chooses (``"PATH"``); used instead of ``value``.

    Examples
    --------
    >>> str(Param("overwrite", True)), str(Param("store", placeholder="PATH"))
    ('overwrite=True', 'store=PATH')
    """

    __slots__ = ("name", "value", "placeholder")

    def __init__(self, name: str, value: Any = _UNSET, *, placeholder: str | None = None):
        self.name = name
        self.value = value
        self.placeholder = placeholder

    @property
    def has_value(self) -> bool:
        """Whether a value (not a placeholder) was given."""
        return self.value is not _UNSET

    def __str__(self) -> str:
        if self.placeholder is not None:
            return f"{self.name}={self.placeholder}"
        if not self.has_value:
            return self.name
        return f"{self.name}={self.value!r}"

    def __repr__(self) -> str:
        return f"Param({self!s})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Param) and (self.name, self.value, self.placeholder)
                == (other.name, other.value, other.placeholder))

    def __hash__(self) -> int:
        return hash(("Param", self.name, self.placeholder))


class Call:
    """A library function named in an error message, with the arguments that matter.

    Parameters
    ----------
    function : str
        The function's public name (``"simulate_store"``).
    *params : Param
        Arguments to pass to it.

    Examples
    --------
    >>> str(Call("simulate_store", Param("kind", "training")))
    "simulate_store(..., kind='training')"
    >>> str(Call("create_manifest"))
    'create_manifest'
    """

    __slots__ = ("function", "params")

    def __init__(self, function: str, *params: Param):
        self.function = function
        self.params = params

    def __str__(self) -> str:
        if not self.params:
            return self.function
        return f"{self.function}(..., {', '.join(str(p) for p in self.params)})"

    def __repr__(self) -> str:
        return f"Call({self!s})"


#: One piece of a message: text, or a reference to a parameter or function of the library.
Part = str | Param | Call
#: How a front end spells a reference (`GaiaRVSCNNError.render`).
Spelling = Callable[[Param | Call], str]


def _rebuild(cls: type[GaiaRVSCNNError], state: dict) -> GaiaRVSCNNError:
    """Unpickle an error (its parts and attributes, whatever its constructor's signature)."""
    err = cls.__new__(cls)
    err.__dict__.update(state)
    err.args = (err.render(),)
    return err


class GaiaRVSCNNError(Exception):
    """Base class of all gaiarvs-cnn errors.

    Parameters
    ----------
    *message : str, Param or Call
        The message, in parts: text, and the parameters or functions of the library that
        it names (joined without separators).
    parameter : str, optional
        The library parameter the error is about (default: the first `Param` of the
        message, if any).
    file : str or path-like, optional
        The file the error is about.
    source_id : int, optional
        The Gaia DR3 source_id of the star it is about.
    column : str, optional
        The column it is about.

    Attributes
    ----------
    parts : tuple of str, Param or Call
        The message, in parts.
    parameter, file, source_id, column
        As given (``file`` as a str), or None.
    """

    parameter: str | None = None
    file: str | None = None
    source_id: Any = None
    column: str | None = None

    def __init__(self, *message: Part, parameter: str | None = None, file: Any = None,
                 source_id: Any = None, column: str | None = None):
        self.parts: tuple[Part, ...] = tuple(message)
        if parameter is None:
            parameter = next((p.name for p in self.parts if isinstance(p, Param)), None)
        self.parameter = parameter
        self.file = None if file is None else str(file)
        self.source_id = source_id
        self.column = column
        super().__init__(self.render())

    @property
    def references(self) -> list[Param | Call]:
        """The parameters and functions the message names, in order."""
        return [p for p in self.parts if not isinstance(p, str)]

    @property
    def problem(self) -> str:
        """What is wrong, without the name of the star (the whole message by default)."""
        return self.__dict__.get("_problem", self.render())

    @problem.setter
    def problem(self, value: str) -> None:
        self.__dict__["_problem"] = value

    def render(self, spell: Spelling = str) -> str:
        """The message with its references spelled by ``spell``.

        Parameters
        ----------
        spell : callable, optional
            ``spell(reference) -> str`` for each `Param` and `Call`; default `str`, the
            library's (Python) spelling.

        Returns
        -------
        str
        """
        return "".join(p if isinstance(p, str) else spell(p) for p in self.parts)

    def __str__(self) -> str:
        return self.render()

    def __reduce__(self):
        return _rebuild, (type(self), dict(self.__dict__))


class InputDataError(GaiaRVSCNNError, ValueError):
    """Input data are malformed (wrong pixel count, grid, missing column, ...)."""


class BadStarError(InputDataError):
    """One star's data cannot be used; ``source_id`` names it.

    Parameters
    ----------
    source_id : int
        Gaia DR3 source_id of the star.
    problem : str
        What is wrong with its data (ends the message).
    **fields
        ``file``, ``column``, ``parameter`` (see `GaiaRVSCNNError`).

    Attributes
    ----------
    source_id : int
        As given.
    problem : str
        As given.
    """

    def __init__(self, source_id: Any, problem: str, **fields: Any):
        super().__init__(f"Gaia DR3 {source_id}: {problem}", source_id=source_id, **fields)
        self.problem = problem


class StoreError(GaiaRVSCNNError):
    """The HDF5 store is missing, unreadable or inconsistent."""


class DuplicateSourceError(StoreError, InputDataError):
    """A source_id is already present (in the batch or the store)."""


class ModelBundleError(GaiaRVSCNNError):
    """A model bundle is missing files or was written by incompatible software."""


class ArchiveError(GaiaRVSCNNError):
    """A remote archive request failed after retries, or returned unusable data."""


class OutputExistsError(GaiaRVSCNNError, FileExistsError):
    """An output exists and overwriting was not requested.

    The one message of the package for an existing output; the command line writes its
    ``parameter`` as the command's flag (``--overwrite``).

    Parameters
    ----------
    path : str or path-like
        The existing output (also the error's ``file``).
    parameter : str, optional
        The library parameter that allows replacing it (default ``"overwrite"``).
    what : str, optional
        What it is (``"catalogue"``, ``"store"``), for the message.
    hint : str or iterable of parts, optional
        Replaces the default advice (``pass overwrite=True to replace it``); may name
        `Param` and `Call` parts.

    Attributes
    ----------
    path : str
        The existing output (as ``file``).
    """

    path: str | None = None

    def __init__(self, path: Any, *, parameter: str = "overwrite", what: str = "",
                 hint: str | Iterable[Part] = ()):
        label = f"{what} {path}" if what else str(path)
        advice: tuple[Part, ...] = ((hint,) if isinstance(hint, str) else tuple(hint)) or (
            "pass ", Param(parameter, True), " to replace it")
        super().__init__(f"{label} exists; ", *advice, ".", parameter=parameter, file=path)
        self.path = self.file



class StoreExistsError(OutputExistsError, StoreError):
    """An HDF5 store exists and overwriting was not requested (an `OutputExistsError` and a
    `StoreError`)."""
