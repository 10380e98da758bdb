"""Knowledge-distillation terms shared by distillation and prune recovery."""
from __future__ import annotations

from typing import Any


def soft_label_kl(student_logits: Any, teacher_logits: Any, temperature: float) -> Any:
    """Soft-label KL(teacher || student) at temperature T, scaled by T^2 (Hinton et al.); logits [B, C]."""
    import torch.nn.functional as F

    T = temperature
    log_ps = F.log_softmax(student_logits / T, dim=-1)
    log_pt = F.log_softmax(teacher_logits / T, dim=-1)
    return F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True) * T * T
