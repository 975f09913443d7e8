"""A complex model trained across other patients, as the starting point of a patient's complex model.

A patient-specific model cannot detect a seizure that starts in a zone and with a morphology none
of the patient's training seizures had (a multifocal patient's first seizure from its second
zone). A model trained on *other* patients' seizures can, if none of its weights belongs to an
electrode (``model.complex_block1: shared``): docs/generalisation.md, round 24.
:mod:`qcascade.prior_train` trains one (``python -m qcascade.prior_train``); a run starts stage 2
from it with ``model.complex_prior``, and must use the same input shape, architecture and bit
widths: :func:`check_prior` refuses anything else. The prior is trained on ``causal_robust`` inputs,
so that amplitudes compare across patients; a run may scale its own inputs otherwise (``auto``
measured as well, round 25). The layers of ``model.complex_prior_frozen`` keep the
prior's weights (:func:`freeze_prior_layers`; round 25).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from qcascade.errors import ConfigError
from qcascade.io_utils import atomic_write_json

WEIGHTS, INT_BITS, MANIFEST = "prior.weights.h5", "int_bits.json", "prior.json"
INPUT_SCALING = "causal_robust"
#: ``model.complex_prior`` value: each patient's prior is trained inside the run, on the cohort's
#: other patients (:mod:`qcascade.prior_other`), into ``<run>/priors/<patient>/``.
OTHER_PATIENTS = "other_patients"
PRIORS_DIR = "priors"
OTHER_PATIENTS_DATASETS = ("synthetic", "swec-short")
#: How a prior is trained unless told otherwise (``prior_train``'s defaults; ``model.complex_prior_epochs``
#: and ``model.complex_prior_max_windows``): docs/generalisation.md, round 24.
EPOCHS, INTERICTAL_PER_ICTAL, MAX_WINDOWS = 6, 3, 20000
MAX_EPOCHS, MIN_WINDOWS = 100, 64


def manifest(cfg) -> dict:
    """What a run must share with the prior (input shape, architecture, bit widths); ``input_scaling``
    records how the prior's own inputs were scaled."""
    return {"n_times": cfg.data.n_times, "n_chans": cfg.data.n_chans, "sfreq": cfg.data.sfreq,
            "input_scaling": INPUT_SCALING, "complex": cfg.model.model_options("complex"),
            "quant": dataclasses.asdict(cfg.quant)}


def save_prior(out: Path, cfg, model, int_bits: dict, info: dict) -> None:
    """Weights, integer bits and the manifest (written last: it marks a complete prior)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ("tmp." + WEIGHTS)  # Keras picks HDF5 by the .h5 suffix
    model.save_weights(str(tmp))
    tmp.replace(out / WEIGHTS)
    atomic_write_json(out / INT_BITS, int_bits)
    atomic_write_json(out / MANIFEST, {**manifest(cfg), **info})


def run_prior_dir(cfg, run_dir: Path, unit: str) -> Path | None:
    """The prior folder a unit's complex model starts from (None: no prior): ``model.complex_prior``
    itself, or with ``other_patients`` the unit's own folder in the run."""
    path = cfg.model.complex_prior
    if not path:
        return None
    if path == OTHER_PATIENTS:
        return Path(run_dir) / PRIORS_DIR / unit
    return Path(path)


def check_other_patients(cfg) -> None:
    """What ``model.complex_prior: other_patients`` needs of the run, before anything is trained.

    Raises:
        ConfigError: a pooled run (there is no other patient), a dataset without patients to
            leave out (Bonn's sets, ``swec-long``), or a first block with weights per electrode
            (``mixed``, ``hybrid``: electrode k of other patients is not electrode k of this one).
    """
    if cfg.pooled:
        raise ConfigError("model.complex_prior: other_patients trains each patient's prior on the other patients; "
                          "a pooled run has one unit of all patients (drop --pooled or the prior)")
    if cfg.data.dataset not in OTHER_PATIENTS_DATASETS:
        raise ConfigError(f"model.complex_prior: other_patients needs data.dataset in {list(OTHER_PATIENTS_DATASETS)}, "
                          f"got {cfg.data.dataset!r}")
    if cfg.model.complex_block1 != "shared":
        raise ConfigError(f"model.complex_prior: other_patients needs model.complex_block1: shared, got "
                          f"{cfg.model.complex_block1!r}, whose first block has weights per electrode: electrode k of "
                          "another patient is not electrode k of this one")


def check_prior(cfg) -> Path | None:
    """The prior folder of ``model.complex_prior``, checked against the run config (None without one,
    and with ``other_patients``, whose priors the run trains: :func:`check_other_patients`):
    input shape, architecture and bit widths must be the prior's.

    Raises:
        ConfigError: missing files, or an input shape/architecture/bit widths that differ from the prior's,
            naming the file and the key.
    """
    path = cfg.model.complex_prior
    if not path:
        return None
    if path == OTHER_PATIENTS:
        check_other_patients(cfg)
        return None
    return check_prior_dir(cfg, Path(path))


def check_prior_dir(cfg, d: Path) -> Path:
    """:func:`check_prior` for the prior folder ``d``."""
    for name in (MANIFEST, WEIGHTS, INT_BITS):
        if not (d / name).is_file():
            raise ConfigError(f"model.complex_prior: {d / name}: missing (train one with python -m qcascade.prior_train)")
    try:
        saved = json.loads((d / MANIFEST).read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"model.complex_prior: {d / MANIFEST}: not valid JSON ({exc})") from None
    for key, want in manifest(cfg).items():
        if saved.get(key) != want:
            raise ConfigError(f"model.complex_prior: {d / MANIFEST}: {key} is {saved.get(key)!r} in the prior and "
                              f"{want!r} in this run")
    return d


def prior_int_bits(prior_dir: Path) -> dict:
    """The activation integer bits the prior was trained under (per layer, as ``_int_bits`` saves them)."""
    return json.loads((Path(prior_dir) / INT_BITS).read_text())


def freeze_prior_layers(model, names) -> None:
    """Keep layers ``names`` of the complex model at the prior's weights (not trainable).

    Raises:
        ConfigError: a name that is not a layer of ``model`` (``model.complex_prior_frozen``).
    """
    layers = {layer.name: layer for layer in model.layers}
    unknown = sorted(set(names) - set(layers))
    if unknown:
        raise ConfigError(f"model.complex_prior_frozen: {unknown} are not layers of the complex model "
                          f"(its layers with weights: {[n for n, l in layers.items() if l.weights]})")
    for name in names:
        layers[name].trainable = False


def load_prior_weights(model, prior_dir: Path) -> None:
    """Set ``model``'s weights to the prior's (same architecture: :func:`check_prior`)."""
    model.load_weights(str(Path(prior_dir) / WEIGHTS))


def prior_summary(ctx) -> dict | None:
    """Which prior the unit's complex model started from (None: none): ``{"folder", "patients",
    "excluded", "windows"}`` from its manifest (``metrics.json``, the report)."""
    d = run_prior_dir(ctx.cfg, ctx.run_dir, ctx.unit)
    if d is None:
        return None
    saved = json.loads((d / MANIFEST).read_text())
    return {"folder": str(d), "patients": saved.get("patients"), "excluded": saved.get("excluded"),
            "windows": saved.get("windows")}


def check_prior_leak(cfg, patients) -> None:
    """Refuse a prior folder (``model.complex_prior``) trained on the recordings this run tests:
    the same data folder, and one of ``patients`` among the prior's. Their test seizures would have
    shaped the model that is tested on them.

    Raises:
        ConfigError: naming the prior's manifest, the patients and the way out.
    """
    path = cfg.model.complex_prior
    if not path or path == OTHER_PATIENTS or not cfg.data.data_dir:
        return
    saved = json.loads((Path(path) / MANIFEST).read_text())
    if not saved.get("data_dir") or Path(saved["data_dir"]).resolve() != Path(cfg.data.data_dir).resolve():
        return
    both = sorted(set(patients) & set(saved.get("patients") or []))
    if both:
        raise ConfigError(f"model.complex_prior: {Path(path) / MANIFEST}: trained on {', '.join(both)} of "
                          f"{cfg.data.data_dir}, which this run tests: their test seizures would have shaped the "
                          f"prior. Train it with --exclude-patient {' '.join(both)}, or use model.complex_prior: "
                          "other_patients")
