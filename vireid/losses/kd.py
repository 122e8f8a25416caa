"""Knowledge-distillation loss of the Hierarchical Feature Constraint (paper eq. 15).

``L_KD = (1/M) sum_i sum_j [KL(p_T^i, p_IDj^i) + KL(p_T^i, p_Pj^i)]``, with
``KL(p, q) = sum_k p_k log(p_k / q_k)``: the teacher distribution ``p_T`` is the first
argument, i.e. KL(teacher || student), the usual distillation direction (the student
covers the teacher's soft targets) and the one the public release uses. The reduction is
the batch mean ("batchmean": summed over classes and stripe heads, divided by M), as the
1/M outside the sums of eq. 15 says.

Temperature ``T`` (default 1, i.e. eq. 15 as written) softens both distributions; the
result is multiplied by ``T**2`` (Hinton et al.) so that gradients keep their scale.

Teacher gradient: eq. 21 has no identity term for the teacher PCB_T, so the teacher
logits are NOT detached by default: PCB_T is trained through this loss alone (as in the
public release) — detaching would leave PCB_T at its random initialisation and its soft
targets meaningless. ``detach_teacher=True`` is offered for experiments.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .precision import float32_loss


@float32_loss
def kd_loss(
    teacher_logits: Tensor,
    student_logits: Tensor,
    temperature: float = 1.0,
    detach_teacher: bool = False,
) -> Tensor:
    """KL(teacher || student) summed over stripe heads, batch mean.

    Args:
        teacher_logits: ``[B, N]`` logits of PCB_T.
        student_logits: ``[B, P, N]`` logits of P stripe heads (or ``[B, N]`` for one head).
        temperature: softmax temperature (> 0).
        detach_teacher: stop the gradient into the teacher.

    Returns:
        A scalar; 0 when every student distribution equals the teacher's, > 0 otherwise.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student_logits.dim() == 2:
        student_logits = student_logits[:, None]
    if student_logits.dim() != 3 or teacher_logits.dim() != 2:
        raise ValueError(
            f"expected teacher [B, N] and student [B, P, N], got {tuple(teacher_logits.shape)} "
            f"and {tuple(student_logits.shape)}"
        )
    b, _, n = student_logits.shape
    if teacher_logits.shape != (b, n):
        raise ValueError(f"teacher logits {tuple(teacher_logits.shape)} do not match [{b}, {n}]")
    if detach_teacher:
        teacher_logits = teacher_logits.detach()
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=-1)[:, None, :]  # [B, 1, N]
    log_p_s = F.log_softmax(student_logits / temperature, dim=-1)  # [B, P, N]
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=(1, 2))  # [B]
    return kl.mean() * temperature**2
