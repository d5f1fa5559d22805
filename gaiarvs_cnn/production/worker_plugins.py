"""Dask worker plugins of the executors: each worker sets its TensorFlow threads
(`TensorFlowThreads`), or sets them and loads the model bundle (`BundlePreload`), when it
starts or joins.

A module of its own so that `gaiarvs_cnn.production.executors` imports `distributed`
only when a Dask executor is used (about 0.4 s of every local ``predict``).
"""
from __future__ import annotations

from distributed import WorkerPlugin

from .task import load_bundle

__all__ = ["TensorFlowThreads", "BundlePreload"]


class TensorFlowThreads(WorkerPlugin):
    """Dask worker plugin: limit the worker's TensorFlow threads at start-up.

    Parameters
    ----------
    threads : int, optional
        TensorFlow intra- and inter-op threads of every worker; None: the worker's own
        number of threads (``dask worker --nthreads``).
    """

    name = "gaiarvs-cnn-threads"

    def __init__(self, threads: int | None = 1):
        self.threads = threads

    def setup(self, worker=None) -> None:
        """Set the threads (called by Dask when a worker starts or joins)."""
        from ..model.predict import configure_threads
        from ..settings import conf

        threads = self.threads or getattr(getattr(worker, "state", None), "nthreads", None) or 1
        conf.threads = int(threads)
        configure_threads(int(threads))


class BundlePreload(WorkerPlugin):
    """Dask worker plugin: set the worker's TensorFlow threads and load the bundle at start-up.

    It also runs on workers that join (or are restarted) later, so every worker holds the
    bundle before its first task.

    Parameters
    ----------
    bundle_path : str
        Model bundle directory (readable by the workers).
    threads : int
        TensorFlow threads per worker.
    """

    name = "gaiarvs-cnn-bundle"

    def __init__(self, bundle_path: str, threads: int | None = 1):
        self.bundle_path = str(bundle_path)
        self.threads = threads

    def setup(self, worker=None) -> None:
        """Set the threads and load the bundle (called by Dask when a worker starts).

        Parameters
        ----------
        worker : `distributed.Worker`, optional
            The worker being set up (unused).
        """
        from ..model.predict import configure_threads
        from ..settings import conf

        conf.threads = self.threads
        configure_threads(self.threads)
        bundle = load_bundle(self.bundle_path)
        bundle.tsne_reference()

    def teardown(self, worker=None) -> None:
        """Nothing to release (the bundle cache lives as long as the worker)."""
