#!/usr/bin/env python
"""Train the quantization-aware seizure-detection cascade and carry it to hardware.

With no arguments this runs the full flow on the embedded synthetic cohort: data, staged training,
baselines, tau calibration, evaluation, hls4ml conversion, C simulation and the report, in
``projects/synthetic/``. See ``python train_qkeras.py --help`` and README.md.
"""

import sys

from qcascade.cli import train_entry

if __name__ == "__main__":
    sys.exit(train_entry(sys.argv[1:]))
