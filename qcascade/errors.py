"""Exception types. Every error names the file or config key it is about."""


class QCascadeError(Exception):
    """Base class for errors qcascade reports to the user (printed without a traceback)."""


class ConfigError(QCascadeError):
    """A configuration key is unknown, has the wrong type, or an invalid value."""


class DataError(QCascadeError):
    """An input recording or data folder is missing, malformed, or unusable."""


class RunDirError(QCascadeError):
    """A run directory exists and would be overwritten, or is inconsistent."""


class ToolNotFoundError(QCascadeError):
    """A vendor tool (Vitis HLS, Vivado) needed for a step is not on PATH."""
