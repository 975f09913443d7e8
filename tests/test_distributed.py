"""The custom loop under MirroredStrategy on two logical CPU devices.

Logical devices must be configured before TensorFlow initialises its runtime, so the run
happens in a subprocess; it prints one JSON line that the test checks.
"""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, TESTS_DIR)
from test_training import (FAST, C, MASK, T, seeded_standin_factory, standin_model, standin_selector,
                           toy_data)
from qcascade.config_train import TrainConfig
from qcascade.training.baselines import train_complex_only
from qcascade.training.loop import get_strategy
from qcascade.training.stages import CascadeTrainer

strategy = get_strategy()
cfg = TrainConfig(**{**FAST, "epochs_stage1": 4, "epochs_stage2": 3, "lr_stage1": 1e-2, "lr_stage2": 1e-2})
X, y = toy_data(200)  # 200 % 32 != 0: the tail is dropped, batches split 16 + 16
Xv, yv = toy_data(64, seed=1)
make_complex = seeded_standin_factory(C)  # with Dropout: its generator is restarted per stage
tf.keras.utils.set_random_seed(cfg.seed)
with strategy.scope():
    sel, simple = standin_selector(), standin_model(1)
    sel.build((None, T, C))
    cplx = make_complex()
tr = CascadeTrainer(sel, simple, cplx, MASK, cfg, strategy)
h1 = tr.run_stage(1, X, y, Xv, yv, verbose=0)
h2 = tr.run_stage(2, X, y, Xv, yv, verbose=0)
out = tr.predict(Xv)
base = train_complex_only(make_complex, X, y, Xv, yv, cfg, strategy, verbose=0)
print("RESULT " + json.dumps({
    "strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
    "stage1_total": h1["total"], "stage2_complex": h2["complex"], "temperature": h1["temperature"],
    "global_batch": h1["global_batch"],
    "simple_shape": list(out["simple_logits"].shape), "complex_shape": list(out["complex_logits"].shape),
    "weights_shape": list(out["sel_weights"].shape), "baseline_loss": base.history["loss"],
    "baseline_logits_shape": list(base.test_logits.shape),
}))
"""


def test_mirrored_strategy_on_two_logical_cpus_trains():
    tests_dir = str(Path(__file__).resolve().parent)
    code = SCRIPT.replace("TESTS_DIR", repr(tests_dir))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=str(Path(tests_dir).parent))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    r = json.loads(lines[0][len("RESULT "):])
    assert r["strategy"] == "MirroredStrategy" and r["replicas"] == 2
    assert r["global_batch"] == 32
    assert r["stage1_total"][-1] < r["stage1_total"][0]
    assert r["stage2_complex"][-1] < r["stage2_complex"][0]
    assert r["baseline_loss"][-1] < r["baseline_loss"][0]
    assert r["temperature"][-1] == 0.05
    assert r["simple_shape"] == [64, 2] and r["complex_shape"] == [64, 2] and r["weights_shape"] == [64, 8]
    assert r["baseline_logits_shape"] == [64, 2]
    # Paired under MirroredStrategy too: the baseline's first phase is the cascade's stage 2.
    assert r["baseline_loss"][:len(r["stage2_complex"])] == r["stage2_complex"]
