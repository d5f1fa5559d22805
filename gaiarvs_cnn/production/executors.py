"""Executors: they only decide WHERE the tasks run (chunks of a catalogue, members of a training).

Both run `gaiarvs_cnn.production.task.compute_chunk` on the same partitions with the same
arguments, so they write the same chunk files and the merge gives the same catalogue:

* `LocalExecutor` -- in this process, one chunk after the other;
* `DaskExecutor` -- on a `dask.distributed` cluster: a `~distributed.LocalCluster` of
  ``workers`` processes, a running scheduler (``scheduler="tcp://host:8786"``) or a given
  ``client``. Workers load the bundle once
  (`~gaiarvs_cnn.production.worker_plugins.BundlePreload`); tasks are retried, and tasks
  of a lost worker are re-run by the scheduler.

Training uses the same executors: ``train_members`` runs
`~gaiarvs_cnn.production.task.train_member_task` for each member to train (in this process,
or as Dask tasks, one member per task), and `~gaiarvs_cnn.model.train_ensemble` (its
``executor`` argument) then assembles the bundle.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence

from astropy import log

from ..exceptions import GaiaRVSCNNError, ModelBundleError
from ..io.shards import Partition
from ..utils import interrupt
from .task import compute_chunk, train_member_task

__all__ = ["ChunkFailedError", "LocalExecutor", "DaskExecutor", "make_client"]


class ChunkFailedError(GaiaRVSCNNError):
    """Chunks still failed after their retries; the others were written.

    Parameters
    ----------
    failures : mapping of str to str
        Chunk key (e.g. ``part-000012``) -> error message; must not be empty.
    work_dir : path-like
        Directory holding the finished chunks (named in the message).

    Attributes
    ----------
    failures : dict of str to str
        Chunk key -> error message.
    """

    def __init__(self, failures: Mapping[str, str], work_dir):
        self.failures = dict(failures)
        first = next(iter(self.failures.items()))
        super().__init__(
            f"{len(self.failures)} chunk(s) failed after retries (first: {first[0]}: "
            f"{first[1]}). The finished chunks are kept in {work_dir}; fix the cause and "
            "run the same command again (resume) to compute only the missing ones.")


class LocalExecutor:
    """Run the chunk tasks in this process, in order (the default executor)."""

    name = "local"
    #: No Dask client (the merge's partitioned writers start their own if they need one).
    active_client = None

    def close(self) -> None:
        """Nothing to release."""

    def run(self, parts: Sequence[Partition], args: tuple, *, progress=None,
            on_chunk: Callable[[int], None] | None = None) -> Iterator[dict]:
        """Compute ``parts``; yield each task's record as it finishes.

        Parameters
        ----------
        parts : sequence of `~gaiarvs_cnn.io.shards.Partition`
            Chunks to compute.
        args : tuple
            ``(bundle_path, work_dir, token, tsne, precision)`` of `compute_chunk`.
        progress : callable, optional
            Called with the number of stars of each finished chunk.
        on_chunk : callable, optional
            Called with the index of each finished chunk.

        Yields
        ------
        dict
            The records of `compute_chunk`.
        """
        for part in parts:
            record = compute_chunk(part, *args)
            if progress is not None:
                progress(len(part))
            if on_chunk is not None:
                on_chunk(part.index)
            interrupt.check()
            yield record


    def train_members(self, store_path, out_dir, members: Sequence[int], config, *,
                      progress=None, **settings) -> list[str]:
        """Train ``members`` of an ensemble in this process, one after the other.

        Parameters
        ----------
        store_path, out_dir : path-like
            Training store and bundle directory.
        members : sequence of int
            Member indices to train (finished ones are skipped).
        config : `~gaiarvs_cnn.model.NetworkConfig`
        progress : callable, optional
            Called with the index of each finished member.
        **settings
            ``n_splits``, ``n_models``, ``epochs``, ``seed``, ``max_stars``.

        Returns
        -------
        list of str
            Names of the trained members.
        """
        names = []
        for index in members:
            names.append(train_member_task(index, str(store_path), str(out_dir),
                                           config.to_dict(), settings)["name"])
            if progress is not None:
                progress(index)
            interrupt.check()
        return names


def make_client(scheduler: str | None = None, workers: int | None = None,
                threads_per_worker: int | None = 1, host: str = "127.0.0.1", **cluster_kwargs):
    """Connect to a Dask scheduler, or start a `~distributed.LocalCluster`.

    Parameters
    ----------
    scheduler : str, optional
        Address such as ``tcp://10.0.0.1:8786`` (``dask scheduler``, dask-jobqueue,
        dask-gateway, ...). If None, a LocalCluster of worker processes is started.
    workers : int, optional
        Worker processes of the LocalCluster (default: number of CPU cores).
    threads_per_worker : int or None
        Threads per LocalCluster worker (1 is best for TensorFlow inference; None: Dask's
        default).
    host : str
        Interface of the LocalCluster (loopback by default).
    **cluster_kwargs
        Passed to `~distributed.LocalCluster` (e.g. ``dashboard_address=":8787"``).

    Returns
    -------
    (client, cluster_or_None)
        Close both when done (the cluster is None for a remote scheduler).
    """
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    kwargs = {"dashboard_address": None, **cluster_kwargs}
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                           threads_per_worker=threads_per_worker, processes=True, host=host,
                           **kwargs)
    return Client(cluster), cluster


def _dashboard(client) -> str | None:
    """The dashboard URL, or None when the scheduler runs no (working) dashboard."""
    import importlib.util

    try:
        if (importlib.util.find_spec("bokeh") is None
                or "dashboard" not in client.scheduler_info().get("services", {})):
            return None
        return client.dashboard_link
    except (KeyError, AttributeError):
        return None


class DaskExecutor:
    """Run the chunk tasks on a `dask.distributed` cluster.

    A client the executor starts itself stays open until `close` (the merge may use it, e.g.
    for a HATS catalogue); `~gaiarvs_cnn.production.produce_catalog` closes it.

    Parameters
    ----------
    client : `distributed.Client`, optional
        Use this client (``scheduler`` and ``workers`` are then ignored; it is not closed).
    scheduler : str, optional
        Address of a running scheduler, e.g. ``tcp://10.0.0.1:8786``.
    workers : int, optional
        Start a `~distributed.LocalCluster` of this many worker processes (default: the
        number of CPU cores) when neither ``client`` nor ``scheduler`` is given.
    threads_per_worker : int or None
        Threads per LocalCluster worker, and TensorFlow threads of every worker (None with
        ``scheduler``: as many as each worker has).
    retries : int
        Extra attempts of a failing task.
    performance_report : path-like, optional
        Write Dask's HTML performance report here.
    """

    name = "dask"

    def __init__(self, *, client=None, scheduler: str | None = None,
                 workers: int | None = None, threads_per_worker: int | None = 1, retries: int = 2,
                 performance_report=None):
        self.client = client
        self.scheduler = scheduler
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.retries = retries
        self.performance_report = performance_report
        self._own = contextlib.ExitStack()
        self._started = None

    @property
    def active_client(self):
        """The client in use: the given one, the one started by `run`, or None."""
        return self.client if self.client is not None else self._started

    def _connect(self):
        if self.active_client is None:
            client, cluster = make_client(self.scheduler, self.workers,
                                          self.threads_per_worker)
            if cluster is not None:
                self._own.callback(cluster.close)
            self._own.callback(client.close)
            self._started = client
        return self.active_client

    def close(self) -> None:
        """Close the client (and LocalCluster) started by `run`; a given client stays open."""
        self._own.close()
        self._started = None

    def run(self, parts: Sequence[Partition], args: tuple, *, progress=None,
            on_chunk: Callable[[int], None] | None = None) -> Iterator[dict]:
        """Compute ``parts`` on the cluster; yield each task's record as it finishes.

        Same parameters as `LocalExecutor.run`. A cluster is started (or connected to)
        only when there is something to compute.

        Raises
        ------
        ChunkFailedError
            After every task ended, if some still failed after their retries.
        """
        if not parts:
            return
        from distributed import as_completed

        failures: dict[str, str] = {}
        with contextlib.ExitStack() as stack:
            client = self._connect()
            link = _dashboard(client)
            if link:
                log.info(f"Dask dashboard (task stream, progress): {link}")
            from .worker_plugins import BundlePreload

            client.register_plugin(BundlePreload(args[0], self.threads_per_worker))
            if self.performance_report:
                from distributed import performance_report as report

                stack.enter_context(report(filename=str(self.performance_report)))
            futures = {client.submit(compute_chunk, p, *args, retries=self.retries,
                                     pure=False): p
                       for p in parts}
            for fut in as_completed(futures):
                part = futures[fut]
                if fut.status == "finished":
                    record = fut.result()
                else:
                    exc = fut.exception()
                    failures[part.key] = f"{type(exc).__name__}: {exc}"
                    log.error(f"Chunk {part.key} ({part.path} rows {part.start}:{part.stop}) "
                              f"failed: {failures[part.key]}")
                    record = None
                fut.release()
                interrupt.check()
                if progress is not None:
                    progress(len(part))
                if record is not None:
                    if on_chunk is not None:
                        on_chunk(part.index)
                    yield record
        if failures:
            raise ChunkFailedError(failures, args[1])

    def train_members(self, store_path, out_dir, members: Sequence[int], config, *,
                      progress=None, **settings) -> list[str]:
        """Train ``members`` of an ensemble on the cluster, one Dask task per member.

        Same parameters as `LocalExecutor.train_members`; the store and ``out_dir`` must be
        readable and writable by every worker (a shared file system). Each task trains its
        member in a child process of the worker (`~gaiarvs_cnn.production.task.train_member_task`
        with ``isolate``) with ``threads_per_worker`` TensorFlow threads, so the member
        equals the one of a local run. Failing tasks are
        retried ``retries`` times; the members of a lost worker are trained again by the
        scheduler on another one.

        Raises
        ------
        gaiarvs_cnn.exceptions.ModelBundleError
            After every task ended, if some members still failed (the finished ones are
            kept: run the same command again to resume).
        """
        if not members:
            return []
        from distributed import as_completed

        client = self._connect()
        # a remote cluster's workers keep their own --nthreads unless told otherwise
        threads = None if self.scheduler and self.threads_per_worker is None else (
            self.threads_per_worker or 1)
        from .worker_plugins import TensorFlowThreads

        client.register_plugin(TensorFlowThreads(threads))
        futures = {client.submit(train_member_task, int(i), str(store_path), str(out_dir),
                                 config.to_dict(), dict(settings), isolate=True,
                                 threads=threads, retries=self.retries, pure=False): i
                   for i in members}
        names, failures = [], {}
        for fut in as_completed(futures):
            index = futures[fut]
            if fut.status == "finished":
                names.append(fut.result()["name"])
                if progress is not None:
                    progress(index)
            else:
                exc = fut.exception()
                failures[index] = f"{type(exc).__name__}: {exc}"
                log.error(f"Training member {index} failed: {failures[index]}")
            fut.release()
            interrupt.check()
        if failures:
            first = next(iter(failures.items()))
            raise ModelBundleError(
                f"{len(failures)} member(s) failed after retries (first: member {first[0]}: "
                f"{first[1]}). Finished members are kept in {out_dir}: fix the cause and run "
                "the same command again to resume.")
        return names
