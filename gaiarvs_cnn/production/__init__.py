"""Producing the catalogue from a store: chunk task, resume state, executors, merge."""
