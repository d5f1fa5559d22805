"""The catalogue data model (installed as ``gaiarvs_cnn.catalog_model``).

``datamodel.json`` lists the 17 columns of the catalogue (paper Table 2) in order, with
dtype, unit, UCD, display format and description, and the provenance keywords written
to the FITS header and the VOTable INFO elements. `gaiarvs_cnn.catalog` reads it; the
documentation page of the catalogue is generated from it.
"""
