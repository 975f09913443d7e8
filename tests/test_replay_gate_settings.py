"""bench.replay_gate_settings: the gate recalibrated with other settings on stored logits."""

import json

import numpy as np
import pytest

from bench.replay_gate_settings import main, parse_setting, persisting, replay_unit, smoothed
from bench.seizure_windows import detection_delays, missed_inside
from qcascade.config import config_to_yaml, load_config
from qcascade.errors import DataError
from qcascade.gate import cascade_decide
from qcascade.io_utils import atomic_save_npz
from qcascade.training.tau import calibrate_tau


def _windows(rng, n, k):
    y = (np.arange(n) % 50 >= 38).astype(int)
    zs = rng.standard_normal((n, 2)) * 1.5 + 2 * np.c_[1 - y, y]
    zc = rng.standard_normal((n, 2)) + 3 * np.c_[1 - y, y]
    return y, zs, zc, np.array([f"r{k}"] * n), np.arange(n, dtype=float), rng.random(n) < 0.3


def _run(root, *, tamper_tau=False, budget=0.0, fallback="off", max_f1_loss=1.0):
    """A run folder (config.yaml) with one unit of two folds, calibrated and decided as step_calibrate does
    (held to the best cascade F1, the default before round 50, under which these folds deploy a high tau)."""
    cfg = load_config(None, {"train": {"tau_reference_f1": "best"}})
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(config_to_yaml(cfg))
    train = cfg.train
    unit = root / "ID1"
    rng = np.random.default_rng(3)
    for k, d in enumerate([unit, unit / "fold1"]):
        (d / "deploy").mkdir(parents=True)
        vy, vzs, vzc, vrec, vstart, vsen = _windows(rng, 150, k)
        ty, tzs, tzc, trec, tstart, tsen = _windows(rng, 200, k)
        ref = {"sensitivity": 0.9, "f1": 0.85}
        kw = dict(rule="confirm_changes", sentinel_every=4, hold=2, sentinel_interictal_only=True)
        tau, sweep = calibrate_tau(vzs, vzc, vy, 1000, 50000, margin=train.tau_margin, grid=train.tau_grid(),
                                   routing_tolerance=train.tau_routing_tolerance, reference_f1=train.tau_reference_f1,
                                   margin_windows=train.tau_margin_windows, reference=ref, record_ids=vrec,
                                   start_s=vstart, sentinel=vsen, **kw)
        choices = {}
        if budget:  # as step_calibrate applies train.tau_routing_budget
            from bench.replay_gate_settings import _Windows
            from qcascade.routing_budget import apply_routing_budget

            tau, rec = apply_routing_budget(tau, sweep, budget, max_f1_loss, lambda t: cascade_decide(
                vzs, vzc, t, record_ids=vrec, start_s=vstart, sentinel=vsen, **kw), _Windows(vy, vstart, vrec), vzc,
                fallback=fallback)
            choices = {"routing_budget": rec}
        out = cascade_decide(tzs, tzc, tau, record_ids=trec, start_s=tstart, sentinel=tsen, **kw)
        atomic_save_npz(d / "val_logits.npz", simple=vzs, complex=vzc, complex_only=vzc, y=vy, record_ids=vrec,
                        start_s=vstart, sentinel=vsen)
        atomic_save_npz(d / "test_logits.npz", simple=tzs, complex=tzc, complex_only=tzc, y=ty, pred=out["pred"],
                        routed=out["routed"], record_ids=trec, start_s=tstart, sentinel=tsen,
                        prev_cls=out["prev_cls"], gap=out["gap"], held=out["held"])
        (d / "deploy" / "deploy.json").write_text(json.dumps(
            {"tau": tau + (0.01 if tamper_tau and k == 1 else 0.0), "gate": "confirm_changes", "probe_every": 0,
             "recheck_tau": 0.0, "hold": 2, "macs_simple": 1000, "macs_complex": 50000, "complex_only_val": ref,
             "sentinel": {"every": 4, "interictal_only": True, "ops": 500}, "choices": choices}))
    return unit


def test_settings_parse_and_name_an_unknown_key():
    assert parse_setting("e8:sentinel_every=8,sentinel=off") == ("e8", {"sentinel_every": 8, "sentinel": False})
    assert parse_setting("g8:hold_max=8,margin=0.02") == ("g8", {"hold_max": 8, "margin": 0.02})
    with pytest.raises(ValueError, match="unknown key 'holds'"):
        parse_setting("x:holds=3")
    with pytest.raises(ValueError, match="sentinel must be on or off"):
        parse_setting("x:sentinel=yes")
    with pytest.raises(ValueError, match="hold must be an integer, got 'two'"):
        parse_setting("x:hold=two")
    with pytest.raises(ValueError, match="sentinel_persist must be >= 1, got 0"):
        parse_setting("x:sentinel_persist=0")
    with pytest.raises(ValueError, match="needs a name other than 'deployed'"):
        parse_setting("deployed:hold=0")
    assert parse_setting("ti:tau_interictal=keep") == ("ti", {"tau_interictal": "keep"})
    with pytest.raises(ValueError, match="tau_interictal must be one of off/keep/margin, got 'on'"):
        parse_setting("x:tau_interictal=on")


def test_the_deployed_setting_reproduces_the_run_and_others_change_it(tmp_path):
    unit = _run(tmp_path / "run")
    res = replay_unit(unit, {"deployed": {}, "nosen": {"sentinel": False}, "h0": {"hold": 0},
                             "g8": {"hold_max": 8}, "g0": {"hold_max": 0}, "ti": {"tau_interictal": "margin"}})
    assert res["ti"]["routing"] <= res["deployed"]["routing"]  # here the second threshold routes no more
    dep, nosen = res["deployed"], res["nosen"]
    # deploy.json from before the growing hold: the fixed hold, which hold_max 0 names explicitly.
    assert res["g0"]["f1"] == dep["f1"] and res["g0"]["routing"] == dep["routing"] and res["g8"]["n"] == dep["n"]
    assert dep["n"] == 400 and 0 < dep["f1"] <= 1 and 0 < dep["routing"] < 1
    # Without the sentinel the every-window cost drops its operations and the sentinel routes nothing.
    assert nosen["why"]["sentinel"] == 0 and dep["why"]["sentinel"] > 0
    assert sum(dep["why"][k] for k in ("unsure", "change", "sentinel", "hold")) == round(dep["routing"] * dep["n"])
    assert res["h0"]["why"]["hold"] == 0
    # Mended and harmed windows: routed, the two models disagree, and the complex one is right / wrong.
    for k in ("unsure", "change", "sentinel", "hold"):
        assert dep["why"][f"{k}_mended"] + dep["why"][f"{k}_harmed"] <= dep["why"][k]
    assert sum(dep["why"][f"{k}_mended"] for k in ("unsure", "change", "sentinel", "hold")) > 0
    # MACs ratio = complex MACs / (every-window MACs + routing * complex MACs) on equal-size folds.
    assert dep["macs_ratio"] == pytest.approx(50000 / (1500 + dep["routing"] * 50000))


def test_a_run_the_replay_does_not_reproduce_is_refused_by_name(tmp_path):
    unit = _run(tmp_path / "run", tamper_tau=True)
    with pytest.raises(DataError, match=r"fold1: recalibrating the deployed gate does not reproduce"):
        replay_unit(unit, {"deployed": {}})


def test_the_command_prints_the_table_and_the_reasons(tmp_path, capsys):
    unit = _run(tmp_path / "run")
    assert main([str(unit), "--why", "--settings", "h0:hold=0"]) == 0
    out = capsys.readouterr().out
    assert ("| deployed: F1 / complex-only F1 / routing / MACs x / hidden "
            "| h0: F1 / complex-only F1 / routing / MACs x / hidden |") in out
    assert "| unit | windows | unsure | change | ictal | hold | sentinel | probe | routed ictal windows |" in out
    assert main([str(tmp_path / "none")]) == 2
    with pytest.raises(SystemExit) as bad:  # a bad setting is a usage error naming the key, before any unit is read
        main([str(unit), "--settings", "x:holds=2"])
    assert bad.value.code == 2 and "unknown key 'holds'" in capsys.readouterr().err


def test_fusion_adds_the_simple_logit_difference_to_the_complex_models(tmp_path):
    unit = _run(tmp_path / "run")
    res = replay_unit(unit, {"deployed": {}, "f0": {"fuse": 0.0}, "f1": {"fuse": 1.0}})
    assert res["f0"] == res["deployed"]
    y, fused = [], []
    for d in (unit, unit / "fold1"):
        t = np.load(d / "test_logits.npz")
        y.append(t["y"])
        dc, ds = (t[k][:, 1] - t[k][:, 0] for k in ("complex_only", "simple"))
        fused.append((dc + ds > 0).astype(int))
    y, fused = np.concatenate(y), np.concatenate(fused)
    tp = np.sum((fused == 1) & (y == 1))
    assert res["f1"]["complex_only_f1"] == pytest.approx(2 * tp / (np.sum(fused) + np.sum(y)))
    assert res["f1"]["complex_only_f1"] != res["deployed"]["complex_only_f1"]
    assert parse_setting("f:fuse=0.5") == ("f", {"fuse": 0.5})
    with pytest.raises(ValueError, match="fuse must be a number, got 'half'"):
        parse_setting("f:fuse=half")


def test_sentinel_persist_keeps_runs_of_up_windows_per_recording():
    up = np.array([1, 1, 0, 1, 1, 1, 1, 1, 1], bool)
    rec = np.array(["a"] * 5 + ["b"] * 4)
    start = np.r_[np.arange(5), np.arange(4)].astype(float)
    # "a": runs of 2 (windows 0-1) and 3 (3-4 ...) cut by the start of "b" (5-8: a run of 4).
    assert np.flatnonzero(persisting(up, rec, start, 3)).tolist() == [7, 8]
    assert np.flatnonzero(persisting(up, rec, start, 2)).tolist() == [1, 4, 6, 7, 8]
    assert np.array_equal(persisting(up, rec, start, 1), up)
    perm = np.random.default_rng(0).permutation(9)  # windows in any order, as stored
    assert np.array_equal(persisting(up[perm], rec[perm], start[perm], 3), persisting(up, rec, start, 3)[perm])
    with pytest.raises(ValueError, match="sentinel_persist"):
        persisting(up, rec, start, 0)


def test_smoothing_averages_the_last_windows_of_each_recording_only():
    z = np.c_[np.zeros(6), [1.0, 3.0, 5.0, 7.0, 2.0, 4.0]]
    rec = np.array(["a"] * 4 + ["b"] * 2)
    start = np.r_[np.arange(4), np.arange(2)].astype(float)
    # "a": 1, (1+3)/2, (1+3+5)/3, (3+5+7)/3; "b" starts again: 2, (2+4)/2.
    assert np.allclose(smoothed(z, rec, start, 3)[:, 1], [1, 2, 3, 5, 2, 3])
    assert np.allclose(smoothed(z, rec, start, 2)[:, 1], [1, 2, 4, 6, 2, 3])
    assert np.array_equal(smoothed(z, rec, start, 1), z)
    perm = np.random.default_rng(1).permutation(6)
    assert np.allclose(smoothed(z[perm], rec[perm], start[perm], 3), smoothed(z, rec, start, 3)[perm])
    with pytest.raises(ValueError, match="smooth"):
        smoothed(z, rec, start, 0)


def test_a_smoothing_replay_recalibrates_and_changes_the_decisions(tmp_path):
    unit = _run(tmp_path / "run")
    res = replay_unit(unit, {"deployed": {}, "same": {"smooth": 1}, "s3": {"smooth": 3}})
    assert res["same"] == res["deployed"]
    assert res["s3"]["taus"] != res["deployed"]["taus"] or res["s3"]["routing"] != res["deployed"]["routing"]
    with pytest.raises(ValueError, match="smooth must be >= 1"):
        parse_setting("s0:smooth=0")


def test_sentinel_persist_setting_routes_fewer_sentinel_windows(tmp_path):
    unit = _run(tmp_path / "run")
    res = replay_unit(unit, {"deployed": {}, "p3": {"sentinel_persist": 3}})
    assert res["p3"]["why"]["sentinel"] < res["deployed"]["why"]["sentinel"]


def test_detection_delay_counts_from_onset_and_accepts_calls_in_the_start_tolerance():
    start = np.arange(200, dtype=float)
    y = np.zeros(200, bool)
    y[50:70] = y[150:160] = True
    pred = np.zeros(200, bool)
    pred[53] = True  # 3 s into the first seizure
    rec = np.array(["a"] * 200)
    assert detection_delays(y, pred, start, rec) == [3.0, None]
    pred[125] = True  # 25 s before the second seizure: inside SzCORE's 30-s start tolerance
    assert detection_delays(y, pred, start, rec) == [3.0, 0.0]
    # Two recordings are two sequences, whatever order the windows come in.
    perm = np.random.default_rng(1).permutation(400)
    y2, p2, s2, r2 = (np.r_[a, a][perm] for a in (y, pred, start, rec))
    r2 = np.where(perm < 200, "a", "b")
    assert sorted(detection_delays(y2, p2, s2, r2)) == [0.0, 0.0, 3.0, 3.0]


def test_missed_inside_counts_seizures_seen_inside_by_the_reference_and_not_by_the_cascade():
    """A cascade "ictal" 10 s before the onset finds the seizure for SzCORE, not inside it (round 58)."""
    start = np.arange(20, dtype=float)
    y = np.zeros(20, int)
    y[10:15] = 1
    rec = np.array(["a"] * 20)
    ref = np.zeros(20, int)
    ref[12] = 1
    near = np.zeros(20, int)
    near[0] = 1  # outside the seizure, inside SzCORE's 30-s start tolerance
    (m,) = missed_inside(y, near, ref, start, rec)
    assert m == {"record": "a", "onset_s": 10.0, "n_windows": 5, "reference_ictal": 1}
    inside = near.copy()
    inside[14] = 1
    assert missed_inside(y, inside, ref, start, rec) == []
    assert missed_inside(y, near, np.zeros(20, int), start, rec) == []  # the reference misses it too
    # two recordings, shuffled order: each seizure is judged within its own recording
    y2, p2, r2, s2 = np.r_[y, y], np.r_[near, inside], np.r_[rec, ["b"] * 20], np.r_[start, start]
    ref2 = np.r_[ref, ref]
    order = np.random.default_rng(0).permutation(40)
    got = missed_inside(y2[order], p2[order], ref2[order], s2[order], r2[order])
    assert [g["record"] for g in got] == ["a"]


def test_the_inside_option_prints_the_missed_seizures_of_the_stored_decisions(tmp_path, capsys):
    from bench.replay_fold_choice import unit_fold_dirs

    unit = _run(tmp_path / "run")
    stored = [m for d in unit_fold_dirs(unit) for z in [np.load(d / "test_logits.npz")]
              for m in missed_inside(z["y"], z["pred"], z["complex_only"].argmax(1), z["start_s"], z["record_ids"])]
    assert replay_unit(unit, {"deployed": {}})["deployed"]["missed_inside"] == stored
    assert main([str(unit), "--settings", "f:fuse=0.5", "--inside"]) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith(f"| {unit} | ") and line.count("|") == 4]
    assert "| unit | deployed | f |" in out and row and row[-1].split(" | ")[1].split(";")[0] == str(len(stored))


def test_probes_parse_as_periods():
    assert parse_setting("p:probes=16/8/4") == ("p", {"probes": (16, 8, 4)})
    assert parse_setting("c:probes=16/8,probe_criterion=cost") == ("c", {"probes": (16, 8), "probe_criterion": "cost"})
    with pytest.raises(ValueError, match="probe_criterion must be one of auto/cost"):
        parse_setting("c:probes=16,probe_criterion=cheap")
    with pytest.raises(ValueError, match="probes must be periods joined by '/'"):
        parse_setting("p:probes=16;8")
    with pytest.raises(ValueError, match="periods must be >= 1"):
        parse_setting("p:probes=8/0")


def test_the_probe_replaces_routing_everything_where_the_simple_model_hides_the_validation_seizure():
    from bench.replay_gate_settings import _choose_probe

    # One validation recording: the simple model is confidently interictal everywhere, also inside
    # the seizure (windows 207-246) that the complex model sees. No tau below 1 finds it.
    n = 400
    y = ((np.arange(n) >= 207) & (np.arange(n) < 247)).astype(int)
    zs = np.c_[np.full(n, 4.0), np.full(n, -4.0)]
    zc = 3.0 * np.c_[1 - 2 * y, 2 * y - 1]
    v = {"simple": zs, "complex": zc, "y": y, "record_ids": np.array(["r0"] * n), "start_s": np.arange(n, dtype=float)}
    kw = dict(rule="confirm_changes", record_ids=v["record_ids"], start_s=v["start_s"], probe_every=0,
              recheck_tau=0.0, sentinel=None, sentinel_every=1, hold=2, hold_max=8, sentinel_interictal_only=False)
    train = load_config().train

    def calibrated(k):
        return calibrate_tau(zs, zc, y, 1000, 50000, margin=train.tau_margin, grid=train.tau_grid(),
                             routing_tolerance=0.0, reference_f1="best", margin_windows=1,
                             reference={"sensitivity": 1.0, "f1": 1.0}, **k)

    assert calibrated(kw)[0] == 1.0
    assert _choose_probe(v, kw, (0,), calibrated, train) == (0, 1.0)
    probe, tau = _choose_probe(v, kw, (0, 16, 8), calibrated, train)
    # A probe lands on the seizure's first window and confirm_changes keeps it: every period finds
    # it whole, so the longest (cheapest) is deployed.
    assert probe == 16 and tau < 1.0
    assert _choose_probe(v, kw, (0, 16, 8), calibrated, train, "cost") == (probe, tau)  # train.gate_probe_choices'
    dec = cascade_decide(zs, zc, tau, **{**kw, "probe_every": probe})
    assert dec["routed"].mean() < 0.2 and dec["pred"][y == 1].all()


def test_the_routing_budget_replaces_a_tau_that_routes_too_much_on_validation():
    from qcascade.training.tau import within_budget

    sweep = [{"tau": 0.0, "routing_rate": 0.05, "f1": 0.50}, {"tau": 0.3, "routing_rate": 0.08, "f1": 0.70},
             {"tau": 0.5, "routing_rate": 0.08, "f1": 0.70}, {"tau": 0.7, "routing_rate": 0.30, "f1": 0.90},
             {"tau": 1.0, "routing_rate": 1.00, "f1": 0.95}]
    assert within_budget(0.7, sweep, 0.5) == 0.7                 # within the budget: kept
    assert within_budget(1.0, sweep, 0.1) == 0.3                 # best F1 under 0.1; equal routing: the smaller tau
    assert within_budget(1.0, sweep, 0.01) == 0.0                # nothing under the budget: the least routing
    assert parse_setting("b:max_routing=0.1") == ("b", {"max_routing": 0.1})


def test_a_budget_replay_routes_at_most_what_the_deployed_gate_routes(tmp_path):
    unit = _run(tmp_path / "run")
    res = replay_unit(unit, {"deployed": {}, "b": {"max_routing": 0.05}})
    assert res["b"]["taus"] != res["deployed"]["taus"]            # the budget binds on some fold
    assert res["b"]["routing"] <= res["deployed"]["routing"] + 1e-12
    assert all(t <= d for t, d in zip(res["b"]["taus"], res["deployed"]["taus"]))


def test_a_budget_applies_to_the_tau_of_the_chosen_probe_period(tmp_path):
    """With ``probes`` the budget binds on the chosen period's tau (it used to be set before the
    probe choice, which recalibrated tau and dropped it)."""
    unit = _run(tmp_path / "run")
    probes = {"probes": (16, 8), "probe_criterion": "cost"}
    res = replay_unit(unit, {"deployed": {}, "p": probes, "pb": {**probes, "max_routing": 0.05}})
    assert res["pb"]["probes"] == res["p"]["probes"]
    assert res["pb"]["taus"] != res["p"]["taus"] and all(b <= t for b, t in zip(res["pb"]["taus"], res["p"]["taus"]))
    assert res["pb"]["routing"] <= res["p"]["routing"] + 1e-12


def test_a_run_made_with_the_routing_budget_replays_as_deployed_and_without_it_as_calibrated(tmp_path):
    """train.tau_routing_budget: the replay reads the run's budget from deploy.json and reproduces the
    deployed taus; ``budget=0`` gives back the calibrated taus (those of the same run made without it)."""
    plain, budgeted = _run(tmp_path / "plain"), _run(tmp_path / "budget", budget=0.05)
    recs = [json.loads((d / "deploy" / "deploy.json").read_text())["choices"]["routing_budget"]
            for d in (budgeted, budgeted / "fold1")]
    assert any(r["applied"] for r in recs)                         # it binds and finds the seizures on some fold
    res = replay_unit(budgeted, {"deployed": {}, "off": {"budget": 0.0}})
    assert res["deployed"]["taus"] == [r["tau"] for r in recs] != res["off"]["taus"]
    assert res["off"]["taus"] == replay_unit(plain, {"deployed": {}})["deployed"]["taus"]
    assert res["deployed"]["routing"] < res["off"]["routing"]
    # On a run made without it, the setting applies it: the same taus as the run made with it.
    assert replay_unit(plain, {"deployed": {}, "b": {"budget": 0.05, "budget_f1_loss": 1.0}})["b"]["taus"] == \
        res["deployed"]["taus"]


def test_the_overall_row_is_mean_complex_only_macs_over_mean_cascade_macs(tmp_path, capsys):
    """Two units: the overall ratio pools MACs the way bench_stress does (a ratio of means, not a mean of ratios)."""
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b", budget=0.05)
    assert main([str(a), str(b), "--json", str(tmp_path / "r.json")]) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    dep = [res[str(u)]["deployed"] for u in (a, b)]
    want = np.mean([d["complex_macs_mean"] for d in dep]) / np.mean([d["macs_mean"] for d in dep])
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| overall"))
    assert f"| {want:.2f} / {np.mean([d['f1'] for d in dep]):.3f} / 0 |" in line
    assert want != pytest.approx(np.mean([d["macs_ratio"] for d in dep]))


def test_the_budget_fallback_is_read_from_the_run_or_the_setting(tmp_path, monkeypatch):
    """train.tau_routing_budget_fallback: a run made with it replays with it (the mode is in every fold's
    budget record), the ``budget_fallback`` setting overrides it, and a run from before it replays without."""
    import bench.replay_gate_settings as replay

    made_with = _run(tmp_path / "fb", budget=0.05, fallback="least_routing")
    before = _run(tmp_path / "old", budget=0.05)
    for d in (before, before / "fold1"):  # as round 54 wrote it: no fallback in the record
        path = d / "deploy" / "deploy.json"
        dep = json.loads(path.read_text())
        del dep["choices"]["routing_budget"]["fallback"]
        path.write_text(json.dumps(dep))
    seen = []
    real = replay.apply_routing_budget

    def spy(*args, fallback="off", **kw):
        seen.append(fallback)
        return real(*args, fallback=fallback, **kw)

    monkeypatch.setattr(replay, "apply_routing_budget", spy)
    replay_unit(made_with, {"deployed": {}})
    assert seen == ["least_routing"] * 2
    seen.clear()
    replay_unit(made_with, {"off": {"budget_fallback": "off"}})
    replay_unit(before, {"deployed": {}, "on": {"budget_fallback": "least_routing"}})
    assert seen == ["off"] * 4 + ["least_routing"] * 2
    with pytest.raises(ValueError, match="budget_fallback must be one of off/least_routing"):
        parse_setting("x:budget_fallback=cheapest")


def test_weak_simple_gives_only_the_trailing_fold_the_unseen_probe_and_its_choice(tmp_path):
    """``weak_gap``/``weak_max_f1`` (``train.gate_weak_simple_*``): here the simple models score validation F1
    0.706 and 0.731 against complex-only's stored 0.85, so a ceiling of 0.72 makes fold 0 alone trail."""
    from qcascade.config_train import TrainConfig

    unit = _run(tmp_path / "run")
    res = replay_unit(unit, {"deployed": {}, "w": {"weak_gap": 0.1, "weak_max_f1": 0.72},
                             "wide": {"weak_gap": 0.2, "weak_max_f1": 1.0}, "both": {"weak_gap": 0.1, "weak_max_f1": 1.0}})
    dep, w = res["deployed"], res["w"]
    periods = (TrainConfig().gate_unseen_probe_every, *TrainConfig().gate_probe_choices)
    assert dep["probes"] == [0, 0] and w["probes"][0] in periods and w["probes"][1] == 0
    assert w["taus"][1] == dep["taus"][1]
    assert res["wide"] == dep  # 0.144 and 0.119 under complex-only: neither trails by 0.2
    assert all(p in periods for p in res["both"]["probes"])
    assert parse_setting("w:weak_gap=0.3,weak_max_f1=0.5") == ("w", {"weak_gap": 0.3, "weak_max_f1": 0.5})


def test_the_ictal_stride_setting_routes_less_and_needs_the_growing_hold(tmp_path):
    unit = _run(tmp_path / "run")
    res = replay_unit(unit, {"deployed": {}, "g8": {"hold_max": 8}, "k2": {"hold_max": 8, "ictal_every": 2},
                             "fixed": {"ictal_every": 2}})  # the run's fixed hold: no stride
    assert res["k2"]["routing"] < res["g8"]["routing"]
    assert res["fixed"]["routing"] == res["deployed"]["routing"] and res["fixed"]["f1"] == res["deployed"]["f1"]
    assert parse_setting("k:ictal_every=2") == ("k", {"ictal_every": 2})
