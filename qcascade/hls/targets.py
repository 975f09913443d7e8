"""FPGA target profiles: the part, its capacities and its clock, from ``hls_configs/targets/*.yaml``.

``hls.target`` in the run config names one profile (default :data:`DEFAULT_TARGET`, a low-power
Zynq-7000). The profile fixes the FPGA part written into every hls4ml project and the capacities
the resource estimate is checked against. ``hls.part`` may be given too, but only if it names the
same part: a different part would be checked against the wrong capacities, so it is a
:class:`~qcascade.errors.ConfigError` (add a profile for the new part instead).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from qcascade.errors import ConfigError
from qcascade.package_data import HLS_CONFIGS

TARGET_DIR = HLS_CONFIGS / "targets"
DEFAULT_TARGET = "xc7z020"
_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")
_FIELDS = {"name": str, "part": str, "family": str, "dsp": int, "bram_18k": int, "lut": int, "ff": int,
           "clock_period_ns": float}


@dataclass(frozen=True)
class Target:
    """One FPGA target: ``part`` and the capacities used by the fit check."""

    name: str
    part: str
    family: str
    dsp: int
    bram_18k: int
    lut: int
    ff: int
    clock_period_ns: float

    def as_dict(self) -> dict:
        """``{"name", "part", "family", "dsp", "bram_18k", "lut", "ff", "clock_period_ns"}``."""
        return asdict(self)


def available_targets(target_dir: Path = TARGET_DIR) -> list[str]:
    """Names of the profiles in ``target_dir`` (file stems)."""
    return sorted(p.stem for p in Path(target_dir).glob("*.yaml"))


def load_target(name: str, target_dir: Path = TARGET_DIR) -> Target:
    """Read the profile ``<target_dir>/<name>.yaml``.

    Raises:
        ConfigError: unknown name (listing the known ones), or a profile with a missing, extra or
            invalid field (naming the file and the key).
    """
    import yaml

    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"hls.target: {name!r} is not a target name")
    path = Path(target_dir) / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"hls.target: unknown target {name!r}; known: {', '.join(available_targets(target_dir))} "
                          f"(profiles in {target_dir})")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read target profile: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a target profile must be a mapping")
    missing, extra = set(_FIELDS) - set(data), set(data) - set(_FIELDS)
    if missing or extra:
        raise ConfigError(f"{path}: missing keys {sorted(missing)}, unknown keys {sorted(extra)}")
    out = {}
    for key, typ in _FIELDS.items():
        val = data[key]
        if typ is str:
            if not isinstance(val, str) or not _NAME.match(val):
                raise ConfigError(f"{path}: {key}: {val!r} must be a plain name")
        elif isinstance(val, bool) or not isinstance(val, (int, float)) or not val > 0 or \
                (typ is int and int(val) != val):
            raise ConfigError(f"{path}: {key}: {val!r} must be a positive {typ.__name__}")
        out[key] = typ(val)
    if out["name"] != name:
        raise ConfigError(f"{path}: name: {out['name']!r} must equal the file name {name!r}")
    return Target(**out)


def resolve_part(target: Target, part: str | None) -> str:
    """The part to build for: the target's; an explicit ``hls.part`` must agree with it."""
    if part is not None and part != target.part:
        raise ConfigError(f"hls.part: {part!r} disagrees with hls.target {target.name!r} (part {target.part}); "
                          "drop hls.part, or choose/add a target profile for that part")
    return target.part
