"""Data for the trainer: recordings, windows, splits and the synthetic cohort (TensorFlow-free).

Interface::

    patients = discover("swec-short", "data/swec", patients=None)  # {patient_id: [Recording]}
    splits = make_patient_splits(patients["ID1"], test_seizure=-1, val_seizure=-2)   # LOSO
    # or make_cross_patient_splits(patients, test_patient="ID1")                    # LOPO
    sets, normalizer = build_windowsets(splits, n_chans=128, stride=512, train_nonictal_stride=1024)
    sets["train"].X   # (n_windows, 512, 128) float32, padded + normalised (stats from train only)
    sets["train"].y, .mask (128,) bool, .record_ids, .start_s (seconds from record start), .patient_ids
    normalizer.save(run_dir / "normalizer.json")

* :class:`Recording` (``qcascade.data.swec``): one file (or in-memory array), lazily read;
  ``iter_chunks(chunk_samples)`` yields ``(n, n_electrodes)`` float32 at 512 Hz (1024 Hz files are
  decimated with an anti-alias filter, streaming); ``ictal_spans`` are 512 Hz sample indices.
* :func:`iter_windows` / :func:`iter_window_batches`: stream ``(n_times, n_electrodes)`` windows with
  labels and start samples, memory bounded independently of the recording length (long-term files).
* :func:`iter_padded_batches` / :func:`as_tf_dataset`: padded, normalised batches for evaluation
  or training; the latter imports TensorFlow lazily.
* Errors on bad input are :class:`qcascade.errors.DataError` naming the file.
"""

from qcascade.data.splits import loso_folds, make_cross_patient_splits, make_patient_splits, seizure_ids
from qcascade.data.discover import discover
from qcascade.data.swec import SFREQ, Recording, discover_long, discover_short
from qcascade.data.normalizer import Normalizer
from qcascade.data.windows import (
    WindowSet,
    as_tf_dataset,
    build_windowsets,
    check_no_leak,
    iter_padded_batches,
    iter_window_batches,
    iter_windows,
    patient_mask,
    window_starts_labels,
)

__all__ = [
    "SFREQ", "Recording", "discover", "discover_short", "discover_long",
    "make_patient_splits", "make_cross_patient_splits", "loso_folds", "seizure_ids",
    "Normalizer", "WindowSet", "build_windowsets", "check_no_leak", "iter_windows", "iter_window_batches",
    "iter_padded_batches", "as_tf_dataset", "patient_mask", "window_starts_labels",
]
