"""Exception classes of gaiarvs-cnn. Messages say what is wrong and what to do."""


class GaiaRVSCNNError(Exception):
    """Base class of all gaiarvs-cnn errors."""


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

    Attributes
    ----------
    source_id : int
        As given.
    problem : str
        As given.
    """

    def __init__(self, source_id, problem):
        self.source_id = source_id
        self.problem = problem
        super().__init__(f"Gaia DR3 {source_id}: {problem}")


class StoreError(GaiaRVSCNNError):
    """The HDF5 store is missing, unreadable or inconsistent."""


class DuplicateSourceError(StoreError, InputDataError):
    """A source_id is already present (in the batch or the store)."""


class ModelBundleError(GaiaRVSCNNError):
    """A model bundle is missing files or was written by incompatible software."""


class ArchiveError(GaiaRVSCNNError):
    """A remote archive request failed after retries, or returned unusable data."""


class OutputExistsError(GaiaRVSCNNError, FileExistsError):
    """An output file exists and overwriting was not requested.

    Build it with `for_path`, which writes the one message of the package; the command line
    reports it with its ``--overwrite`` flag.

    Attributes
    ----------
    path : str or None
        The existing output (set by `for_path`).
    """

    path = None

    @classmethod
    def for_path(cls, path, *, what: str = "", hint: str = "") -> "OutputExistsError":
        """The error for an existing ``path``.

        Parameters
        ----------
        path : str or path-like
            The existing output.
        what : str, optional
            What it is (``"catalogue"``, ``"store"``), for the message.
        hint : str, optional
            Replaces the default advice (``pass overwrite=True to replace it``).

        Returns
        -------
        OutputExistsError
        """
        label = f"{what} {path}" if what else str(path)
        err = cls(f"{label} exists; {hint or 'pass overwrite=True to replace it'}.")
        err.path = str(path)
        return err
