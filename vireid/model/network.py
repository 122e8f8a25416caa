"""The joint pose / ReID network of Fig. 2."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from .backbone import build_resnet
from .config import ModelConfig
from .hfc import HierarchicalFeatureConstraint
from .init import gccpm_init, init_weights, small_init
from .modality_shared import ModalitySharedModule
from .modality_specific import ModalitySpecificModule
from .pcb import PCBHead, concat_normalized
from .pose_branch import PoseEstimationBranch
from .reid_branch import ReIDBranch

logger = logging.getLogger(__name__)


@dataclass
class TrainOutput:
    """What :class:`PoseVIReIDNet` returns in train mode (every tensor in batch order).

    Attributes:
        id_logits: ``[B, P, N]`` ReID-branch stripe logits (on the masked features, eq. 9).
        id_embeddings: ``[B, P, E]`` ReID-branch stripe embeddings f_IDj (eq. 11).
        pose_logits: ``[B, P, N]`` pose-branch stripe logits, or ``None`` without the PEB.
        pose_embeddings: ``[B, P, E]`` pose-branch stripe embeddings f_Pj, or ``None``.
        teacher_logits: ``[B, N]`` PCB_T logits (eq. 14), or ``None`` without HFC.
        heatmaps: ``[B, 1|16, H/4, W/4]`` predicted heatmaps Ĥ (eq. 4), or ``None`` when
            the pose loss is off (then nothing supervises them).
    """

    id_logits: Tensor
    id_embeddings: Tensor
    pose_logits: Optional[Tensor] = None
    pose_embeddings: Optional[Tensor] = None
    teacher_logits: Optional[Tensor] = None
    heatmaps: Optional[Tensor] = None


class PoseVIReIDNet(nn.Module):
    """Fig. 2: modality-specific and -shared modules, Pose Estimation branch, ReID branch,
    PCB heads, and the HFC teacher, switched on and off by :class:`ModelConfig`.

    ``forward(images [B, 3, H, W], modality [B])`` (modality 0 RGB, 1 IR):

    * train mode: a :class:`TrainOutput`;
    * eval mode: ``{'f_id': [B, P*E], 'f_all': [B, 2*P*E] | [B, P*E], 'f_p': [B, P*E]}`` —
      stripe embeddings L2-normalised per stripe and concatenated (eqs. 12-13, compared by
      inner product). Without the PEB there is no ``'f_p'`` and ``'f_all'`` equals ``'f_id'``.
    """

    def __init__(self, config: Optional[ModelConfig] = None) -> None:
        super().__init__()
        self.config = cfg = config or ModelConfig()
        resnet = build_resnet(cfg.backbone)
        self.modality_specific = ModalitySpecificModule(resnet)
        self.modality_shared = ModalitySharedModule(resnet)
        self.reid_branch = ReIDBranch(resnet, cfg.last_stride)
        del resnet
        c2 = self.modality_shared.out_channels
        c4 = self.reid_branch.out_channels
        self.pose_branch: Optional[PoseEstimationBranch] = None
        self.pose_pcb: Optional[PCBHead] = None
        self.hfc: Optional[HierarchicalFeatureConstraint] = None
        if cfg.use_pose_branch:
            self.pose_branch = PoseEstimationBranch(
                in_channels=c2,
                out_channels=c4,
                mid_channels=cfg.block6_mid_channels or c2,
                pose_channels=cfg.pose_channels,
                deconv_channels=cfg.deconv_channels,
                initial_heatmap_channels=cfg.initial_heatmap_channels,
                refine_channels=cfg.refine_channels,
                heatmap_channels=cfg.heatmap_channels,
            )
            self.pose_pcb = PCBHead(c4, cfg.num_classes, cfg.num_stripes, cfg.stripe_dim, cfg.leaky_slope)
        self.reid_pcb = PCBHead(c4, cfg.num_classes, cfg.num_stripes, cfg.stripe_dim, cfg.leaky_slope)
        if cfg.use_hfc:
            self.hfc = HierarchicalFeatureConstraint(c4, c4, cfg.num_classes, cfg.teacher_dim, cfg.leaky_slope)
        # everything outside the backbone-derived modules (Section IV-A: Xavier by default)
        init_weights(cfg.init, [self.pose_branch, self.pose_pcb, self.reid_pcb, self.hfc])
        if self.pose_branch is not None and cfg.refinement_init == "gccpm":
            gccpm_init(self.pose_branch.refinement)   # GCCPM's own start (a LIP checkpoint replaces it)
        if self.pose_branch is not None and cfg.heatmap_head_init == "small":
            small_init(self.pose_branch.refinement.heatmaps[-1][0])   # the conv that outputs Ĥ
        logger.info(
            "PoseVIReIDNet(%s): PEB=%s pose loss=%s HFC=%s, %d parameters, heatmaps %s at input %s",
            cfg.backbone, cfg.use_pose_branch, cfg.use_pose_loss, cfg.use_hfc,
            sum(p.numel() for p in self.parameters()), self.heatmap_size() if cfg.use_pose_branch else None,
            cfg.input_size,
        )

    # ---------------------------------------------------------------- sizes
    @property
    def feature_dim(self) -> Dict[str, int]:
        """Length of each eval-mode feature."""
        d = self.config.num_stripes * self.config.stripe_dim
        dims = {"f_id": d, "f_all": d}
        if self.pose_branch is not None:
            dims.update(f_p=d, f_all=2 * d)
        return dims

    def heatmap_size(self, input_hw: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
        """``(H, W)`` of the predicted heatmaps for ``input_hw`` (default: the configured input)."""
        return self.config.heatmap_size(input_hw)

    # -------------------------------------------------------------- forward
    def forward(self, images: Tensor, modality: Tensor,
                rgb_count: Optional[int] = None) -> Union[TrainOutput, Dict[str, Tensor]]:
        """``rgb_count``: the batch is ``rgb_count`` RGB images then IR ones, known on the host
        (:func:`~vireid.model.modality_specific.leading_rgb_count`): the stems then split it
        without reading ``modality`` back from the device."""
        if rgb_count is None:
            f_m = self.modality_specific(images, modality)  # [B, C1, H/4, W/4]
        else:
            f_m = self.modality_specific(images, modality, rgb_count=rgb_count)
        f_s = self.modality_shared(f_m)  # [B, C2, H/8, W/8]
        f_id2 = self.reid_branch(f_s)  # [B, C4, H/16, W/16]
        pose_out = None
        f_id = f_id2
        if self.pose_branch is not None:
            pose_out = self.pose_branch(f_s)  # F_P [B, C4, H/16, W/16], Ĥ [B, C, H/4, W/4]
            if pose_out.features.shape != f_id2.shape:
                raise RuntimeError(
                    f"pose features {tuple(pose_out.features.shape)} do not match the ReID "
                    f"features {tuple(f_id2.shape)}"
                )
            f_id = f_id2 * torch.sigmoid(pose_out.features)  # eqs. 7 and 9
        reid = self.reid_pcb(f_id)
        pose = self.pose_pcb(pose_out.features) if pose_out is not None else None
        if not self.training:
            feats = {"f_id": concat_normalized(reid.embeddings)}
            if pose is not None:
                feats["f_p"] = concat_normalized(pose.embeddings)
                feats["f_all"] = torch.cat([feats["f_id"], feats["f_p"]], dim=1)  # eq. 13
            else:
                feats["f_all"] = feats["f_id"]
            return feats
        return TrainOutput(
            id_logits=reid.logits,
            id_embeddings=reid.embeddings,
            pose_logits=pose.logits if pose is not None else None,
            pose_embeddings=pose.embeddings if pose is not None else None,
            teacher_logits=self.hfc(f_id2, pose_out.features) if self.hfc is not None else None,
            heatmaps=pose_out.heatmaps if (pose_out is not None and self.config.use_pose_loss) else None,
        )

    def predict_heatmaps(self, images: Tensor, modality: Tensor) -> Tensor:
        """The Pose Estimation branch's heatmaps Ĥ ``[B, 1|16, H/4, W/4]`` (eq. 4) for a batch,
        in either mode (validation scores them against the cached targets)."""
        if self.pose_branch is None:
            raise ValueError("this model has no Pose Estimation branch (model.use_pose_branch: false)")
        f_s = self.modality_shared(self.modality_specific(images, modality))  # [B, C2, H/8, W/8]
        return self.pose_branch(f_s).heatmaps

    # ------------------------------------------------------------ reporting
    def parameter_counts(self) -> Dict[str, int]:
        """Parameters per block of Fig. 2 (absent blocks omitted) and ``'total'``."""
        counts: Dict[str, int] = {}
        for name, module in self.named_children():
            counts[name] = sum(p.numel() for p in module.parameters())
        if self.pose_branch is not None:
            counts["pose_branch.refinement"] = sum(p.numel() for p in self.pose_branch.refinement.parameters())
        counts["total"] = sum(p.numel() for p in self.parameters())
        return counts

    def parameter_groups(self) -> Dict[str, list]:
        """Parameter groups for the optimiser: the modality-specific stems (0.1x lr in the
        release) and everything else."""
        stem_ids = {id(p) for p in self.modality_specific.parameters()}
        return {
            "modality_specific": list(self.modality_specific.parameters()),
            "rest": [p for p in self.parameters() if id(p) not in stem_ids],
        }
