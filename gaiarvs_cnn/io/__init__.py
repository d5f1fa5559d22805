"""Data at rest: the HDF5 star store, sharded stores, readers of real Gaia products, ingest."""
