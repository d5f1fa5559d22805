"""Source adapters: the simulated survey, the Gaia archive (ESA, AIP) and reference catalogues.

Adapters return `~gaiarvs_cnn.store.StarBatch` objects (for stars to parameterise) or
astropy Tables in the canonical reference schema of `gaiarvs_cnn.sources.reference`.
Adapters never import the model.
"""
