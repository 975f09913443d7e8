"""Window metrics, cascade cost, SzCORE event metrics (timescoring) and the PNG helpers."""

import json

import numpy as np
import pytest

from qcascade.evaluation import (cascade_efficiency, evaluate_cascade, event_metrics, plot_confusion_matrix,
                                 plot_training_curves, window_metrics)

PNG = b"\x89PNG\r\n\x1a\n"


def test_window_metrics_known_values():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    pred = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    score = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.4, 0.05])
    m = window_metrics(y, score, pred)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m["auc"] == pytest.approx(13 / 15)  # 0.3 beats 3 of the 5 negatives
    # (n, 2) logits give the same AUC as the probability of the ictal class
    logits = np.stack([np.zeros(8), np.log(score / (1 - score))], 1)
    assert window_metrics(y, logits, pred)["auc"] == pytest.approx(m["auc"])


def test_window_metrics_undefined_values_are_none_and_json_safe():
    m = window_metrics(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]), np.zeros(4))
    assert m["auc"] is None and m["sensitivity"] is None and m["f1"] is None
    assert m["specificity"] == 1.0 and m["accuracy"] == 1.0
    assert json.loads(json.dumps(m)) == m
    assert window_metrics(np.ones(3), None, np.ones(3))["specificity"] is None


def test_cascade_efficiency_and_evaluate_cascade():
    e = cascade_efficiency(np.array([True, False, False, False]), 100, 10_000)
    assert e == {"routing_rate": 0.25, "avg_macs_per_window": 2600.0,
                 "macs_ratio_vs_complex": pytest.approx(10_000 / 2600)}
    zs = np.array([[0.0, 5.0], [5.0, 0.0], [0.0, 0.1], [0.1, 0.0]])
    zc = np.array([[5.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 0.0]])
    out = evaluate_cascade(zs, zc, np.array([1, 0, 1, 0]), 0.5, 100, 10_000, rule="confidence")
    assert out["routing_rate"] == 0.5 and out["accuracy"] == 1.0 and out["tau"] == 0.5


def record(duration_s, seizures, predicted, hop=1.0):
    """Windows of one record at ``hop`` s: labels from (onset, offset) seizures, predictions likewise."""
    starts = np.arange(0, duration_s, hop)

    def inside(spans):
        flags = np.zeros(len(starts), bool)
        for a, b in spans:
            flags |= (starts >= a) & (starts < b)
        return flags.astype(int)

    return starts, inside(seizures), inside(predicted)


def test_event_metrics_detection_false_alarm_and_delay():
    s1, y1, p1 = record(3600, [(300, 360)], [(305, 340), (2000, 2010)])  # detected 5 s late + 1 FA
    s2, y2, p2 = record(1800, [(600, 700)], [])  # missed
    m = event_metrics(np.r_[y1, y2], np.r_[p1, p2], np.r_[s1, s2],
                      ["r1"] * len(s1) + ["r2"] * len(s2))
    assert m["n_events"] == 2 and m["n_detected"] == 1 and m["n_false_alarms"] == 1
    assert m["sensitivity"] == 0.5
    assert m["hours"] == pytest.approx(1.5)
    assert m["fa_per_hour"] == pytest.approx(1 / 1.5)
    assert m["mean_delay_s"] == pytest.approx(5.0)
    json.dumps(m)


def test_event_metrics_early_detection_within_tolerance_and_order_independence():
    s, y, p = record(1200, [(300, 360)], [(290, 320)])  # starts 10 s before onset (< 30 s tolerance)
    perm = np.random.default_rng(0).permutation(len(s))
    m = event_metrics(y[perm], p[perm], s[perm], np.zeros(len(s), int))
    assert m["sensitivity"] == 1.0 and m["n_false_alarms"] == 0 and m["mean_delay_s"] == 0.0


def test_event_metrics_without_seizures():
    s, y, p = record(600, [], [(100, 110)])
    m = event_metrics(y, p, s, ["a"] * len(s), window_s=1.0)
    assert m["sensitivity"] is None and m["mean_delay_s"] is None
    assert m["fa_per_hour"] == pytest.approx(6.0)


def test_plots_write_pngs(tmp_path):
    y = np.array([0, 0, 1, 1, 0])
    out = plot_confusion_matrix(y, np.array([0, 1, 1, 0, 0]), tmp_path / "cm.png", title="test")
    assert out.read_bytes()[:8] == PNG
    hist = {"stage1": {"total": [1.0, 0.5], "simple": [0.9, 0.4], "val_simple_f1": [0.2, 0.6],
                       "val_complex_f1": [None, None]},
            "stage2": {"total": [0.4], "complex": [0.3], "val_cascade_f1": [0.7]}}
    out = plot_training_curves(hist, tmp_path / "sub" / "curves.png")
    assert out.read_bytes()[:8] == PNG
