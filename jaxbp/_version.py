"""The version of jaxbp (read by the build, ``jaxbp.__version__`` and run folders' meta.json)."""

__version__ = "0.1.0"
