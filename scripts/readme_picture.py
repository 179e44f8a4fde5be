"""Write docs/img/demo-before-after.png: one frame of `make demo`'s side-by-side output."""

import sys
from pathlib import Path

import av
import cv2

src = Path(sys.argv[1] if len(sys.argv) > 1 else "out/demo_side_by_side.mp4")
index = int(sys.argv[2]) if len(sys.argv) > 2 else 60
dst = Path("docs/img/demo-before-after.png")
with av.open(str(src)) as container:
    for i, frame in enumerate(container.decode(video=0)):
        if i == index:
            img = frame.to_ndarray(format="bgr24")
            break
h, w = img.shape[:2]
img = cv2.resize(img, (w * 2 // 3, h * 2 // 3), interpolation=cv2.INTER_AREA)
dst.parent.mkdir(parents=True, exist_ok=True)
cv2.imwrite(str(dst), img)
print(dst)
