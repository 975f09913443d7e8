"""The classical feature baseline, the per-record timeline figure and the report's at-a-glance flag."""

import numpy as np
import pytest

from qcascade.evaluation import event_metrics
from qcascade.feature_baseline import BANDS, FEATURES, fit_feature_baseline, streamed_outputs, window_features
from qcascade.report import folds_markdown, glance_markdown
from qcascade.timeline import plot_record_timeline, scored_events

PNG = b"\x89PNG\r\n\x1a\n"


def test_window_features_measure_line_length_variance_and_band_power():
    t = np.arange(512) / 512.0
    X = np.zeros((2, 512, 3), np.float32)
    X[0, :, 0] = np.sin(2 * np.pi * 6 * t)  # theta
    X[1, :, 0] = 3 * np.sin(2 * np.pi * 40 * t)  # low gamma, larger
    X[:, :, 1] = 1.0  # dead-flat electrode
    F = window_features(X, np.array([True, True, False]))
    assert F.shape == (2, 2 * len(FEATURES))
    f0, f1 = F[:, :len(FEATURES)], F[:, len(FEATURES):]
    assert f0[1, 0] > f0[0, 0] and f0[1, 1] > f0[0, 1]  # line length and variance grow
    theta, gamma = 2 + BANDS.index((4, 8)), 2 + BANDS.index((30, 70))
    assert f0[0, theta] > f0[0, gamma] + 5 and f0[1, gamma] > f0[1, theta] + 5
    assert np.allclose(f1[:, 0], 0) and np.all(f1[:, 1] < -20)  # flat: no line length, log(0 + eps)


def test_feature_baseline_separates_high_amplitude_windows_and_picks_c_on_validation():
    rng = np.random.default_rng(0)

    def data(n):
        y = (rng.random(n) < 0.2).astype(int)
        X = rng.standard_normal((n, 512, 4)).astype(np.float32)
        X[y == 1, :, 2] *= 4.0  # ictal: one electrode's amplitude rises
        return window_features(X, np.ones(4, bool)), y

    (Ft, yt), (Fv, yv), (Fs, ys) = data(300), data(100), data(200)
    model, c, scores = fit_feature_baseline(Ft, yt, Fv, yv)
    assert set(scores) == {0.01, 0.1, 1.0} and scores[c] == max(scores.values())
    assert np.mean(model.predict(Fs) == ys) > 0.97
    _, c1, none = fit_feature_baseline(Ft, yt)
    assert c1 == 1.0 and none == {}


def test_streamed_features_give_the_outputs_of_the_whole_set():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((23, 512, 3)).astype(np.float32)
    mask = np.array([True, False, True])
    whole = window_features(X, mask)
    got = streamed_outputs([lambda F: F[:, 0], lambda F: F.sum(1)], X, mask, chunk=5)
    np.testing.assert_array_equal(got[0], whole[:, 0])
    np.testing.assert_allclose(got[1], whole.sum(1), rtol=1e-12)
    assert [len(g) for g in streamed_outputs([len], X[:0], mask)] == [0]


def test_timeline_events_agree_with_event_metrics_and_the_png_is_written(tmp_path):
    n = 400
    y = np.zeros(n, int)
    y[180:215] = 1
    pred = y.copy()
    pred[:190] = 0  # late detection
    pred[330:334] = 1  # a false alarm
    starts = np.arange(n, dtype=float)
    ev = scored_events(y, pred, starts, 1.0)
    ref = event_metrics(y, pred, starts, ["r"] * n)
    assert len(ev["detected"]) == ref["n_detected"] == 1 and not ev["missed"]
    assert len(ev["false_alarms"]) == ref["n_false_alarms"] == 1
    ev_miss = scored_events(y, np.zeros(n, int), starts, 1.0)
    assert len(ev_miss["missed"]) == 1 and not ev_miss["detected"]
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((n, 2))
    out = plot_record_timeline(tmp_path / "t.png", trace=rng.standard_normal((n, 512)), sfreq=512.0, start_s=starts,
                               y=y, simple_logits=logits, complex_logits=logits, routed=rng.random(n) < 0.1,
                               pred=pred, tau=0.3, title="x")
    assert out.read_bytes()[:8] == PNG


def _m(cascade_f1, complex_f1, feature_f1):
    t = {"cascade": {"f1": cascade_f1, "routing_rate": 0.1}, "complex_only": {"f1": complex_f1},
         "feature_baseline": {"f1": feature_f1, "auc": 0.9}, "events": {"sensitivity": 1.0, "fa_per_hour": 2.0}}
    return {"test": t}


def test_at_a_glance_flags_a_cnn_that_loses_to_the_feature_baseline():
    text = "\n".join(glance_markdown(_m(0.9, 0.7, 0.8)))
    assert "complex_only F1 0.700: **LOSES to the feature baseline**" in text
    assert "cascade F1 0.900: beats or ties" in text
    assert "LOSES" not in "\n".join(glance_markdown(_m(0.9, 0.85, 0.8)))


def test_fold_table_shows_mean_and_sd_and_links_timelines():
    m = _m(0.9, 0.7, 0.8)
    f = {"fold": 1, "dir": "fold1", "test_records": ["r1"], "selected_electrode": 3, "tau": 0.2,
         "timelines": ["timeline_r1.png"], "test": m["test"]}
    m.update(folds=[dict(f, fold=0, dir=".", timelines=["timeline_r0.png"]), f],
             fold_stats={"cascade_f1": {"mean": 0.9, "sd": 0.05, "n": 2}})
    text = "\n".join(folds_markdown(m))
    assert "0.900 ± 0.050" in text
    assert "(timeline_r0.png)" in text and "(fold1/timeline_r1.png)" in text
    assert folds_markdown({"test": {}}) == []


@pytest.mark.parametrize("bad", [None])
def test_glance_without_a_feature_baseline_is_empty(bad):
    assert glance_markdown({"test": {"feature_baseline": bad}}) == []


def test_timelines_are_capped_with_seizure_records_first(tmp_path):
    from qcascade.data.windows import WindowSet
    from qcascade.timeline import plot_test_timelines

    n_rec, per = 5, 6
    y = np.zeros(n_rec * per, int)
    y[4 * per:4 * per + 3] = 1  # only the last record holds a seizure
    ws = WindowSet(np.random.default_rng(0).standard_normal((n_rec * per, 64, 2)).astype(np.float32), y,
                   np.ones(2, bool), np.repeat([f"s{i}" for i in range(n_rec)], per),
                   np.tile(np.arange(per, dtype=float), n_rec), np.array(["P"] * (n_rec * per)))
    z = np.zeros((len(y), 2))
    names = plot_test_timelines(tmp_path, ws, 1, z, z, np.zeros(len(y), bool), y, 0.5, "P", max_records=2)
    assert names == ["timeline_s4.png", "timeline_s0.png"]
    assert all((tmp_path / n).read_bytes()[:8] == PNG for n in names)


def test_timeline_trace_is_read_in_chunks_and_capped_in_points(monkeypatch):
    """A long-term test record (hours of windows) is neither held whole nor drawn whole."""
    import qcascade.timeline as tl

    n, n_times = 50, 512
    X = np.random.default_rng(0).standard_normal((n, n_times, 3)).astype(np.float32)
    starts = np.arange(n, dtype=np.float64)
    t, x = tl.decimated_trace(X[:, :, 1], starts, 512.0, n_times, 8)  # the plain array path
    np.testing.assert_array_equal(x, X[:, :, 1].ravel()[::8])
    np.testing.assert_allclose(t, (starts[:, None] + np.arange(n_times)[None, :] / 512.0).ravel()[::8])

    reads = []

    class Counting:
        shape = X.shape

        def __getitem__(self, idx):
            reads.append(len(idx[0]))
            return X[idx]

    monkeypatch.setattr(tl, "TRACE_CHUNK", 7)
    monkeypatch.setattr(tl, "MAX_TRACE_POINTS", 1000)
    col = tl.WindowColumn(Counting(), np.arange(n), 1)
    t2, x2 = tl.decimated_trace(col, starts, 512.0, n_times, 8)
    assert max(reads) <= 7 and sum(reads) == n
    assert len(x2) <= 1000
    dec = -(-n * n_times // 1000)
    np.testing.assert_array_equal(x2, X[:, :, 1].ravel()[::dec])
