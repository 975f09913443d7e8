"""One entry point to every dataset's recordings: :func:`discover`."""

from __future__ import annotations

from pathlib import Path

from qcascade.data.bonn import discover_bonn
import qcascade.data.swec as swec
from qcascade.data.swec import Recording
from qcascade.data.synthetic import cohort_recordings, make_cohort
from qcascade.errors import DataError


def discover(dataset: str, data_dir=None, patients=None, **kwargs) -> dict[str, list[Recording]]:
    """Recordings per patient for ``dataset`` in ``{"synthetic", "swec-short", "swec-long", "bonn"}``.

    ``synthetic`` generates the default cohort in memory (``kwargs`` go to
    :func:`qcascade.data.synthetic.make_cohort`) unless ``data_dir`` is given, in which case it is
    read like ``swec-short`` (a folder written by ``write_swec_short``). ``bonn`` returns one unit
    ``"bonn"`` (:func:`qcascade.data.bonn.discover_bonn`). Other ``kwargs`` go to
    :func:`~qcascade.data.swec.discover_short` / :func:`~qcascade.data.swec.discover_long` / :func:`~qcascade.data.bonn.discover_bonn`.
    """
    if dataset == "synthetic":
        if data_dir is None:
            recs = cohort_recordings(make_cohort(**kwargs))
            return {p: r for p, r in recs.items() if not patients or p in patients}
        dataset = "swec-short"
    if data_dir is None:
        raise DataError(f"dataset '{dataset}' needs a data directory")
    if dataset == "swec-short":
        return swec.discover_short(Path(data_dir), patients, **kwargs)
    if dataset == "swec-long":
        return swec.discover_long(Path(data_dir), patients, **kwargs)
    if dataset == "bonn":
        return {u: r for u, r in discover_bonn(Path(data_dir), **kwargs).items() if not patients or u in patients}
    raise DataError(f"unknown dataset '{dataset}' (synthetic, swec-short, swec-long, bonn)")
