"""The export check's numbers and tolerances, on hand-made outputs."""
from __future__ import annotations

import numpy as np
import pytest

from edgeslim.errors import ExportMismatchError
from edgeslim.export.validate import TOLERANCES, check_export, compare_outputs, tolerance_for

REF = np.array([[1.0, -1.0], [0.5, 0.2], [-2.0, 3.0], [0.1, 0.0]], dtype=np.float32)


def test_identical_outputs_pass_with_exact_numbers():
    c = compare_outputs(REF, REF.copy(), "fp32")
    assert c.max_abs_diff == 0.0 and c.mean_abs_diff == 0.0 and c.label_agreement == 1.0
    assert c.cosine == pytest.approx(1.0, abs=1e-12) and c.failures == [] and c.to_dict()["passed"]


def test_numbers_match_hand_computation():
    got = REF.copy()
    got[3] = [0.0, 0.1]          # flips the last label, diff 0.1 on both logits
    c = compare_outputs(REF, got, "int8")
    assert c.max_abs_diff == pytest.approx(0.1, abs=1e-6)
    assert c.mean_abs_diff == pytest.approx(0.2 / 8, abs=1e-6)
    assert c.label_agreement == 0.75
    a, b = REF.astype(np.float64).ravel(), got.astype(np.float64).ravel()
    assert c.cosine == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), rel=1e-9)
    assert c.failures == ["label agreement 0.7500 < 0.9"]   # INT8 bounds agreement and cosine, not max diff


def test_fp32_tolerance_catches_small_drift_and_error_carries_numbers():
    got = REF + 2e-3
    with pytest.raises(ExportMismatchError, match="max abs diff 0.002 > 0.001") as err:
        check_export(REF, lambda b: got[b["i"]], [{"i": slice(0, 2)}, {"i": slice(2, 4)}], "fp32", what="x")
    assert err.value.max_abs_diff == pytest.approx(2e-3, rel=1e-3) and err.value.tolerance == 1e-3
    # a stated override loosens only the max-abs-diff bound
    c = check_export(REF, lambda b: got[b["i"]], [{"i": slice(0, 4)}], "fp32", what="x",
                     tolerance=tolerance_for("fp32", 1e-2))
    assert c.failures == [] and c.tolerance.min_cosine == TOLERANCES["fp32"].min_cosine


def test_nan_output_fails_and_shape_mismatch_raises():
    bad = REF.copy()
    bad[0, 0] = np.nan
    assert compare_outputs(REF, bad, "fp16").failures
    with pytest.raises(ExportMismatchError, match="shape"):
        compare_outputs(REF, REF[:, :1], "fp32")
