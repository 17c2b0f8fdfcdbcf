"""``python -m jaxbp``: the ``jaxbp`` command."""

import sys

from .cli import main

sys.exit(main())
