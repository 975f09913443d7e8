"""The training steps of one unit or fold, in order: the part of the build each fold repeats.

:data:`qcascade.pipeline.STEPS` is this list followed by the hardware steps, the fold loop and
the report; :func:`qcascade.steps_folds.step_folds` runs this list once per extra fold.
"""

from __future__ import annotations

from qcascade.feature_baseline import step_feature_baseline
from qcascade.rundir import Step
from qcascade.steps_data import step_prepare_data
from qcascade.steps_eval import step_calibrate, step_evaluate
from qcascade.steps_fit import (step_baselines, step_finetune, step_select_electrode, step_train_complex,
                                step_train_simple)

TRAIN_STEPS = [
    Step("step_prepare_data", step_prepare_data, "split recordings, window, fit normalisation (train only)"),
    Step("step_train_simple", step_train_simple, "stage 1: ChannelSelector + simple model"),
    Step("step_select_electrode", step_select_electrode, "hard selection of the one electrode to deploy"),
    Step("step_train_complex", step_train_complex, "stage 2: complex CNN, simple path frozen on that electrode"),
    Step("step_finetune", step_finetune, "stage 3: simple + complex jointly at a lower learning rate"),
    Step("step_baselines", step_baselines, "complex-only and simple candidates A/B/C alone"),
    Step("step_feature_baseline", step_feature_baseline, "line length, energy, band powers + logistic regression"),
    Step("step_calibrate", step_calibrate, "fold BatchNorm, calibrate tau on validation windows"),
    Step("step_evaluate", step_evaluate, "test metrics, events (SzCORE), tau sweep, timelines, plots"),
]
