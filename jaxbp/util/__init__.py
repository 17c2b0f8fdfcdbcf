"""Small shared utilities: input checks, the dtype and tolerance policy, plain-text
tables, atomic file writes, matplotlib drawing to files, and the threefry lowering
jaxbp compiles its programs with on CPU (``_threefry``).

The ground floor: imports nothing else of jaxbp.
"""

from ._dtypes import Tolerance, tolerance
from ._plotting import pyplot

__all__ = ["Tolerance", "pyplot", "tolerance"]
