"""Ctrl-C recorded in a flag (`gaiarvs_cnn.utils.interrupt`): an interrupt whose
`KeyboardInterrupt` an extension module swallowed still stops the next step."""
import signal

import pytest

from gaiarvs_cnn.utils import interrupt


@pytest.fixture
def handler():
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupt.install()
    yield
    signal.signal(signal.SIGINT, previous)
    interrupt._requested.clear()


def swallowed_sigint():
    """SIGINT whose KeyboardInterrupt is dropped, as PyTables drops it while it reads a
    node's attributes."""
    try:
        signal.raise_signal(signal.SIGINT)
    except KeyboardInterrupt:
        pass


def test_a_swallowed_interrupt_is_raised_again_by_check(handler):
    interrupt.check()  # nothing arrived: no-op
    swallowed_sigint()
    assert interrupt.requested()
    with pytest.raises(KeyboardInterrupt):
        interrupt.check()


def test_install_leaves_an_ignored_or_custom_sigint_alone():
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        interrupt.install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_engine_stops_after_the_chunk_whose_interrupt_was_swallowed(handler,
                                                                  tiny_observed_store,
                                                                  tiny_bundle, tmp_path):
    from gaiarvs_cnn.production import CatalogRun, produce_catalog

    run = CatalogRun(source="files", store=tiny_observed_store, model=tiny_bundle,
                     out=tmp_path / "out", formats="fits", chunk_size=40, progress=False)
    computed = []

    def on_chunk(i):
        computed.append(i)
        if i == 0:
            swallowed_sigint()

    with pytest.raises(KeyboardInterrupt):
        produce_catalog(run, on_chunk=on_chunk)
    assert computed == [0]
    assert not (tmp_path / "out" / "gaiarvs_cnn_catalog.fits").exists()
    assert [p.name for p in run.partial_dir.glob("part-*.npz")] == ["part-000000.npz"]
