"""Folders the package ships beside its code: hls4ml config templates, target profiles, flow scripts.

In the source tree ``qcascade/resources/<name>`` links to the top-level folder of the same name;
a wheel carries the files themselves (``setup.cfg`` package data), so an installed qcascade finds
them without the checkout.
"""

from __future__ import annotations

from pathlib import Path

from qcascade.errors import QCascadeError

_ROOT = Path(__file__).resolve().parent / "resources"
HLS_CONFIGS = _ROOT / "hls_configs"  # templates; targets/ holds the FPGA target profiles


def resource_dir(name: str) -> Path:
    """``qcascade/resources/<name>`` (``hls_configs`` or ``vivado_scripts``).

    Raises:
        QCascadeError: the folder is missing (a broken install).
    """
    path = _ROOT / name
    if not path.is_dir():
        raise QCascadeError(f"{path}: the packaged folder '{name}' is missing; reinstall qcascade "
                            "(pip install .) or run from a complete checkout")
    return path
