"""The catalogue: the 17-column data model (paper Table 2) and its readers and writers."""
from .schema import *  # noqa: F401,F403
from .schema import __all__  # noqa: F401
