"""vireid.model: the joint pose / ReID network of the paper's Fig. 2 (eqs. 1-14).

One module per block: :class:`ModalitySpecificModule` (eq. 1), :class:`ModalitySharedModule`
(eq. 1), :class:`PoseEstimationBranch` (eqs. 2-7, whose Refinement Module is GCCPM's
refinement stage from :mod:`vireid.pose.gccpm`), :class:`ReIDBranch` (eqs. 8-9),
:class:`PCBHead` (eqs. 10-13), :class:`HierarchicalFeatureConstraint` (eq. 14), assembled by
:class:`PoseVIReIDNet` and configured by :class:`ModelConfig` (with Table IV presets).
"""
from .backbone import build_resnet, layer_out_channels
from .config import ABLATIONS, ModelConfig, ModelSettings
from .hfc import HierarchicalFeatureConstraint
from .modality_shared import ModalitySharedModule
from .modality_specific import IR, RGB, ModalitySpecificModule, ModalityStem, leading_rgb_count
from .network import PoseVIReIDNet, TrainOutput
from .pcb import PCBHead, PCBOutput, StripeHead, concat_normalized, stripe_pool
from .pose_branch import PoseBranchOutput, PoseEstimationBranch
from .reid_branch import ReIDBranch
from .weights import load_imagenet_backbone, load_pose_branch_from_lip

__all__ = [
    "ABLATIONS",
    "HierarchicalFeatureConstraint",
    "IR",
    "ModalitySharedModule",
    "ModalitySpecificModule",
    "ModalityStem",
    "ModelConfig",
    "ModelSettings",
    "PCBHead",
    "PCBOutput",
    "PoseBranchOutput",
    "PoseEstimationBranch",
    "PoseVIReIDNet",
    "RGB",
    "ReIDBranch",
    "StripeHead",
    "TrainOutput",
    "build_resnet",
    "concat_normalized",
    "layer_out_channels",
    "leading_rgb_count",
    "load_imagenet_backbone",
    "load_pose_branch_from_lip",
    "stripe_pool",
]
