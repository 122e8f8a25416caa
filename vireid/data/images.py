"""Reading image files, with the reason when one cannot be used (never a silent None)."""
from __future__ import annotations

from pathlib import Path
from typing import Tuple, Union

import cv2
import numpy as np


def load_image(path: Path, flags: int = cv2.IMREAD_COLOR) -> Union[Tuple[np.ndarray, bytes], str]:
    """``(decoded image, file bytes)``, or why the file is unusable: ``"unreadable: ..."``,
    ``"zero-byte file"`` or ``"cannot be decoded as an image"``. ``IMREAD_COLOR`` gives BGR
    uint8 (grey IR images as three equal channels)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if not data:
        return "zero-byte file"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None or image.size == 0:
        return "cannot be decoded as an image"
    return image, data
