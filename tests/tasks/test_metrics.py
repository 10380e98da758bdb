import math

import numpy as np
import pytest

from edgeslim.tasks import metrics as M


def test_accuracy_f1_mcc_hand_computed():
    preds = [1, 1, 0, 0, 1, 0, 1, 1]
    labels = [1, 0, 0, 1, 1, 0, 1, 0]
    # tp=3 fp=2 fn=1 tn=2
    assert M.accuracy(preds, labels) == 5 / 8
    assert M.f1_binary(preds, labels) == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert M.matthews_corr(preds, labels) == pytest.approx((3 * 2 - 2 * 1) / math.sqrt(5 * 4 * 4 * 3))
    assert M.matthews_corr([1, 1, 1], [1, 0, 1]) == 0.0  # undefined -> 0 as in sklearn
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        M.accuracy([1, 0, 1], [1, 0])


def test_correlations_hand_computed():
    x = [1.0, 2.0, 3.0, 4.0]
    y = [2.0, 4.0, 5.0, 4.0]
    # pearson: deviations x (-1.5,-.5,.5,1.5), y (-1.75,.25,1.25,.25): cov sum 3.5, sx2 5, sy2 4.75
    assert M.pearson(x, y) == pytest.approx(3.5 / math.sqrt(5 * 4.75))
    assert list(M.rankdata([10, 20, 20, 5])) == [2.0, 3.5, 3.5, 1.0]
    # ranks y: [1, 2.5, 4, 2.5] vs [1,2,3,4]
    assert M.spearman(x, y) == pytest.approx(M.pearson([1, 2, 3, 4], [1, 2.5, 4, 2.5]))
    assert M.pearson([1, 1, 1], [1, 2, 3]) == 0.0


def test_topk():
    logits = np.array([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    assert M.topk_accuracy(logits, [2, 0, 0], 1) == pytest.approx(1 / 3)
    assert M.topk_accuracy(logits, [2, 0, 0], 2) == pytest.approx(2 / 3)
    assert M.topk_accuracy(logits, [2, 0, 0], 5) == 1.0


def test_squad_official_normalisation():
    assert M.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert M.squad_em("the Denver Broncos", "Denver Broncos") == 1.0
    # pred tokens [denver, broncos, won], truth [denver, broncos]: p=2/3 r=1 -> f1 = 0.8
    assert M.squad_f1("Denver Broncos won", "Denver Broncos") == pytest.approx(0.8)
    s = M.squad_scores({"a": "Denver Broncos won", "b": "Paris"}, {"a": ["Broncos", "Denver Broncos"], "b": ["London"]})
    assert s["exact_match"] == 0.0 and s["f1"] == pytest.approx(100 * 0.8 / 2)
    with pytest.raises(ValueError, match="no prediction"):
        M.squad_scores({}, {"a": ["x"]})
