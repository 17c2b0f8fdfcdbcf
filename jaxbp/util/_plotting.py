"""matplotlib, drawing to files: the one place the library imports it (the ``plots`` extra)."""

from __future__ import annotations

__all__ = ["pyplot"]


def pyplot():
    """``matplotlib.pyplot`` drawing to files (the Agg backend), for figures of one's own.

    Raises ImportError with the install hint when matplotlib is missing.
    """
    try:
        import matplotlib
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'jaxbp[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
