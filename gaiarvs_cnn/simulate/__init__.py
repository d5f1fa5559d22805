"""The simulated Gaia-RVS survey: population, spectra, photometry, XP, reference surveys.

Physics only: nothing here touches the network or the model.
"""
from .survey import *  # noqa: F401,F403
from .survey import __all__  # noqa: F401
