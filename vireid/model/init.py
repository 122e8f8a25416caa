"""Weight initialisation of the layers that no pre-trained file fills (Section IV-A).

The paper: "the modality-specific module, modality-shared module, and ReID branch are
initialized by ResNet50 pre-trained on ImageNet. Other parameters are initialized by
Xavier initialization [49]". :func:`init_weights` with ``scheme='xavier'`` (the default of
:class:`vireid.model.ModelConfig`) does exactly that for "the other parameters": every conv,
transposed conv and linear weight of the Pose Estimation branch, the PCB stripe heads
and the HFC teacher is drawn from Glorot and Bengio's uniform distribution
``U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))`` (gain 1) with zero biases;
BatchNorm layers start at weight 1, bias 0. The Refinement Module, which the paper loads from
LIP (``model.pose_init``), starts from a random draw only when none is given, and then as
GCCPM itself starts one (:func:`gccpm_init`, ``ModelConfig.refinement_init``).

The backbone-derived modules are left as torchvision builds them: they are what ImageNet
weights overwrite. Without ImageNet weights (``model.pretrained: null``, the demo's random
start, a setting the paper never uses) they keep torchvision's ResNet initialisation
(Kaiming normal, fan-out), the one ResNets are designed to train from.

``scheme='default'`` is vireid's initialisation before the paper's reading was adopted
(Kaiming normal fan-out for the stripe / teacher FCs, N(0, 0.001) for the classifiers,
PyTorch's per-layer defaults for the Pose Estimation branch), kept to train as earlier runs did (the same distributions; not the same draws).
"""
from __future__ import annotations

from typing import Iterable

from torch import nn

#: Accepted values of ``ModelConfig.init``.
INIT_SCHEMES = ("xavier", "default")
#: Accepted values of ``ModelConfig.heatmap_head_init``.
HEATMAP_HEAD_INITS = ("scheme", "small")
#: Accepted values of ``ModelConfig.refinement_init``.
REFINEMENT_INITS = ("gccpm", "scheme")

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def xavier_init(modules: Iterable[nn.Module]) -> int:
    """Xavier-uniform weights and zero biases for every conv / linear layer under ``modules``;
    BatchNorm to (1, 0). Returns the number of layers initialised with Xavier."""
    count = 0
    for root in modules:
        for m in root.modules():
            if isinstance(m, _WEIGHTED):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
                count += 1
            elif isinstance(m, _NORMS):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    return count


def default_head_init(heads: Iterable[nn.Module]) -> None:
    """vireid's earlier head initialisation (``scheme='default'``): Kaiming normal (fan-out)
    for the embedding FCs (``embed[0]``), N(0, 0.001) for the classifiers, zero biases."""
    for head in heads:
        for m in head.modules():
            embed = getattr(m, "embed", None)
            classifier = getattr(m, "classifier", None)
            if isinstance(embed, nn.Sequential) and isinstance(classifier, nn.Linear):
                nn.init.kaiming_normal_(embed[0].weight, mode="fan_out")
                nn.init.zeros_(embed[0].bias)
                nn.init.normal_(classifier.weight, std=0.001)
                nn.init.zeros_(classifier.bias)


def init_weights(scheme: str, new_modules: Iterable[nn.Module]) -> None:
    """Initialise the layers that no pre-trained file fills (see the module docstring).

    Args:
        scheme: ``'xavier'`` (the paper) or ``'default'`` (vireid's earlier init).
        new_modules: the modules outside the backbone (pose branch, PCB heads, teacher).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init must be one of {INIT_SCHEMES}, got {scheme!r}")
    modules = [m for m in new_modules if m is not None]
    if scheme == "xavier":
        xavier_init(modules)
    else:
        default_head_init(modules)


def gccpm_init(module: nn.Module) -> int:
    """PyTorch's per-layer default initialisation for every layer under ``module`` (convs:
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` weights and biases; BatchNorm (1, 0)): how GCCPM
    ([34]) initialises a refinement stage it trains from scratch. Returns the number of
    layers reset.

    Why the Refinement Module does not take Xavier: the paper initialises it from LIP
    (Table IV) and Xavier only "the other parameters". A random Refinement Module
    (``model.pose_init: null``) drawn from Xavier feeds its un-normalised heatmap head
    (1x1 conv + ReLU, 1x1 conv; no BatchNorm, GCCPM's design) features whose second moment
    puts the pose loss's curvature in the head's last conv at ``2 * lambda * eig_max(E[h h^T])``
    ~ 480 at 288x144 (lambda 5): with lr 0.01 that is 4.8, over momentum SGD's stability
    limit ``2 (1 + 0.9) = 3.8``, and the heatmaps diverge (inf within 5 steps). PyTorch's
    default gives ~110 (1.1), the public LIP checkpoint's stages ~130 (1.3): the random start
    then begins on the pre-trained one's scale. (docs/model.md, "Training from random weights".)
    """
    count = 0
    for m in module.modules():
        if isinstance(m, _WEIGHTED + _NORMS):
            m.reset_parameters()
            count += 1
    return count


def small_init(layer: nn.Module, std: float = 0.001) -> None:
    """N(0, ``std``) weights and a zero bias (mmpose's heatmap heads): an output layer that
    starts near zero, so its first gradients do not push the layer before it to zero."""
    nn.init.normal_(layer.weight, std=std)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
