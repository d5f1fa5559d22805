"""Network clients: the ESA and AIP Gaia archives (TAP, DataLink) and the reference catalogues.

Adapters only talk to services and return astropy Tables or `~gaiarvs_cnn.io.batch.StarBatch`
objects; writing stores is the job of `gaiarvs_cnn.io`.
"""
