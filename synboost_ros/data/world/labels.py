"""Cityscapes labelIds the world draws with, looked up by class name."""

from __future__ import annotations

from synboost_ros.classes import CLASS_NAMES, TRAIN_ID_TO_LABEL_ID, VOID_OBJECT_LABEL_IDS

LABEL: dict[str, int] = {
    name: int(TRAIN_ID_TO_LABEL_ID[train_id]) for train_id, name in enumerate(CLASS_NAMES)
}
UNLABELED = 0  # anomalies in the Cityscapes-layout ground truth
STATIC, DYNAMIC = VOID_OBJECT_LABEL_IDS
