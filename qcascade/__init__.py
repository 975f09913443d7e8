"""qcascade: quantization-aware cascaded seizure detection for iEEG, from training to FPGA."""

__version__ = "0.1.0"
