"""Week 9 Q2, the seed exercise, worked end to end: forward values, three gradients, an update, training.

    python experiments/week9_q2.py [--lr 0.5] [--steps 50] [--float32] [--out FILE]

The same as `jaxbp demo` (it takes the same options); --out also writes the text to FILE.
"""

import sys

from jaxbp.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
