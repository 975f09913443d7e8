"""``python -m qcascade ...``: the ``qcascade`` console command (``python -m qcascade train --quick``)."""

import sys

from qcascade.cli import main

if __name__ == "__main__":
    sys.exit(main())
