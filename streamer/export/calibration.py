"""Calibration frames: pick varied frames from videos/photos (`streamer calib make`) and read them back.

INT8 ranges are only as good as the frames they are measured on. The deployed input is *dirty*
camera frames, so a calibration set mixes clean frames with seeded synthetic-dirty twins
(dirt, raindrops, streaks) and the activation ranges cover both.

Selection: thumbnails (32×32 grey) of evenly spaced candidates, then farthest-point sampling: each
next frame is the candidate least like any frame already picked; a candidate closer than
``min_diff`` (mean absolute grey difference) to a picked one is a near-duplicate and never picked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamer.errors import SourceError
from streamer.preprocess.color import IMAGE_SUFFIXES, read_rgb8

MANIFEST = "manifest.json"
# twins cycle through these: dirt is the product's main case, so it gets half of them
DEFAULT_KINDS = ("dirt", "raindrop", "dirt", "streaks")
_THUMB = 32


@dataclass
class CalibSet:
    """Frames (uint8 H×W×3 RGB) and the hash that keys calibration caches."""

    frames: list[np.ndarray]
    sha256: str
    source: str
    names: list[str] = field(default_factory=list)
    corrupted: list[bool] = field(default_factory=list)  # synthetic twins, from the manifest

    def clean(self, limit: int | None = None) -> list[np.ndarray]:
        """Frames that are not synthetic twins (all without a manifest), ``limit`` spread evenly."""
        flags = self.corrupted or [False] * len(self.frames)
        picked = [f for f, c in zip(self.frames, flags) if not c]
        if limit and len(picked) > limit:
            picked = [picked[int(k)] for k in np.linspace(0, len(picked) - 1, limit).round()]
        return picked

    def batches(self) -> list[np.ndarray]:
        """Each frame as a 1×3×H×W float32 [0,1] batch, the backends' layout."""
        return [f.transpose(2, 0, 1)[None].astype(np.float32) / 255.0 for f in self.frames]


def hash_frames(frames: list[np.ndarray]) -> str:
    """sha256 over shapes and pixels: the same frames always give the same key."""
    h = hashlib.sha256()
    for f in frames:
        h.update(np.asarray(f.shape, np.int64).tobytes())
        h.update(np.ascontiguousarray(f, np.uint8).tobytes())
    return h.hexdigest()


def fit_cover(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Centre-crop to the target aspect, then area-resize: no bars, no stretching."""
    th, tw = size_hw
    h, w = img.shape[:2]
    scale = max(th / h, tw / w)
    ch, cw = min(h, round(th / scale)), min(w, round(tw / scale))
    y, x = (h - ch) // 2, (w - cw) // 2
    crop = img[y:y + ch, x:x + cw]
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(crop, (tw, th), interpolation=interp)


def crop_multiple(img: np.ndarray, multiple: int) -> np.ndarray:
    h, w = img.shape[:2]
    nh, nw = h // multiple * multiple, w // multiple * multiple
    y, x = (h - nh) // 2, (w - nw) // 2
    return img[y:y + nh, x:x + nw]


def _thumb(rgb_or_grey: np.ndarray) -> np.ndarray:
    g = rgb_or_grey if rgb_or_grey.ndim == 2 else cv2.cvtColor(rgb_or_grey, cv2.COLOR_RGB2GRAY)
    return cv2.resize(g, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)


def pick_varied(thumbs: np.ndarray, n: int, min_diff: float = 0.004) -> list[int]:
    """Farthest-point sampling over K×D thumbnails in [0,1]; returns ≤ n indices in input order."""
    if len(thumbs) == 0 or n <= 0:
        return []
    x = thumbs.reshape(len(thumbs), -1).astype(np.float32)
    first = int(np.argmax(x.std(axis=1)))  # most textured frame: never a blank one
    picked = [first]
    dist = np.abs(x - x[first]).mean(axis=1)
    while len(picked) < n:
        nxt = int(np.argmax(dist))
        if dist[nxt] < min_diff:
            break  # everything left is a near-duplicate of something picked
        picked.append(nxt)
        dist = np.minimum(dist, np.abs(x - x[nxt]).mean(axis=1))
    return sorted(picked)


@dataclass(frozen=True)
class Picked:
    """One chosen frame and where it came from."""

    image: np.ndarray
    source: str
    index: int
    pts_s: float | None


def _video_candidates(path: Path, max_candidates: int) -> tuple[list[int], np.ndarray]:
    import av

    idx, thumbs = [], []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            step = max(1, (stream.frames or 0) // max_candidates)
            for i, frame in enumerate(container.decode(stream)):
                if i % step == 0:
                    idx.append(i)
                    thumbs.append(frame.reformat(width=_THUMB, height=_THUMB, format="gray").to_ndarray())
    except (av.FFmpegError, IndexError) as exc:
        raise SourceError(f"{path}: cannot decode video ({exc}); check the file with ffprobe") from exc
    if not thumbs:
        raise SourceError(f"{path}: no video frames in it")
    return idx, np.stack(thumbs).astype(np.float32) / 255.0


def pick_from_video(path: Path, n: int, min_diff: float = 0.004) -> list[Picked]:
    """Two passes: thumbnails of ≤ 16·n evenly spaced frames, then decode only the picked ones."""
    import av

    idx, thumbs = _video_candidates(path, max(64, 16 * n))
    wanted = {idx[k] for k in pick_varied(thumbs, n, min_diff)}
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                pts = float(frame.pts * stream.time_base) if frame.pts is not None else None
                out.append(Picked(frame.to_ndarray(format="rgb24"), path.name, i, pts))
                if len(out) == len(wanted):
                    break
    return out


def pick_from_images(paths: list[Path], n: int, min_diff: float = 0.004) -> list[Picked]:
    thumbs = []
    for p in paths:
        small = cv2.imread(str(p), cv2.IMREAD_REDUCED_GRAYSCALE_4)
        if small is None:
            raise SourceError(f"{p}: not a readable image; remove it or convert it to PNG/JPEG")
        thumbs.append(_thumb(small))
    chosen = pick_varied(np.stack(thumbs).astype(np.float32) / 255.0, n, min_diff)
    return [Picked(read_rgb8(paths[k]), paths[k].name, k, None) for k in chosen]


def _expand(sources: list[Path]) -> list[tuple[str, list[Path]]]:
    """Each video is a group; folders and loose images are image groups."""
    groups: list[tuple[str, list[Path]]] = []
    loose: list[Path] = []
    for s in sources:
        if s.is_dir():
            files = sorted(p for p in s.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise SourceError(f"{s}: no {'/'.join(sorted(IMAGE_SUFFIXES))} images in it")
            groups.append(("images", files))
        elif s.suffix.lower() in IMAGE_SUFFIXES and s.exists():
            loose.append(s)
        elif s.exists():
            groups.append(("video", [s]))
        else:
            raise SourceError(f"{s}: not found; give a video file, an image folder or image files")
    if loose:
        groups.append(("images", loose))
    return groups


def make_calib(sources: list[Path], out: Path, *, frames: int = 32, size_wh: tuple[int, int] = (640, 360),
               dirty_share: float = 0.5, kinds: tuple[str, ...] = DEFAULT_KINDS, seed: int = 0,
               min_diff: float = 0.004, jpeg_quality: int | None = None) -> dict:
    """Write ``frames`` files (clean picks + seeded corrupted twins) and ``manifest.json`` to ``out``.

    Picks are split evenly over the sources (each video, each image group) so one long video
    cannot crowd out the rest. ``jpeg_quality`` None writes PNG (lossless).
    """
    from streamer.synth import corrupt

    if frames < 1:
        raise SourceError(f"--frames {frames}: need at least 1")
    if not 0.0 <= dirty_share < 1.0:
        raise SourceError(f"--dirty {dirty_share}: must be in [0, 1): some frames must stay clean")
    n_twins = round(frames * dirty_share)
    n_clean = frames - n_twins
    groups = _expand(sources)
    picks: list[Picked] = []
    for g, (kind, paths) in enumerate(groups):
        quota = n_clean // len(groups) + (g < n_clean % len(groups))
        picks += pick_from_video(paths[0], quota, min_diff) if kind == "video" else \
            pick_from_images(paths, quota, min_diff)
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).exists():  # remake: drop the frames the old manifest listed, nothing else
        for row in _manifest_rows(out):
            (out / Path(row["file"]).name).unlink(missing_ok=True)
    ext = ".png" if jpeg_quality is None else ".jpg"
    params = [cv2.IMWRITE_PNG_COMPRESSION, 9] if jpeg_quality is None else [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    w, h = size_wh
    rows = []

    def save(img: np.ndarray, stem: str, pick: Picked, corruption: str | None) -> None:
        name = f"{len(rows):03d}_{stem}{ext}"
        if not cv2.imwrite(str(out / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params):
            raise SourceError(f"{out / name}: cannot write; check the folder is writable")
        rows.append({"file": name, "source": pick.source, "index": pick.index, "pts_s": pick.pts_s,
                     "corruption": corruption, "sha256": _sha256(out / name)})

    clean = [fit_cover(p.image, (h, w)) for p in picks]
    for p, img in zip(picks, clean):
        save(img, _slug(p), p, None)
    twin_of = np.linspace(0, len(picks) - 1, n_twins).round().astype(int) if picks and n_twins else []
    for t, k in enumerate(twin_of):
        kind = kinds[t % len(kinds)]
        rng = np.random.default_rng([seed, t])
        dirty, _ = corrupt(clean[k].astype(np.float32) / 255.0, kind, rng)
        img = np.clip(dirty * 255.0 + 0.5, 0, 255).astype(np.uint8)
        save(img, f"{_slug(picks[k])}_{kind}", picks[k], f"{kind} seed=[{seed},{t}]")
    manifest = {"size_wh": [w, h], "seed": seed, "dirty_share": dirty_share, "kinds": list(kinds),
                "min_diff": min_diff, "requested": frames, "frames": rows,
                "sources": [str(s) for s in sources]}
    # the key read_calib(out) will compute: decoded pixels in manifest order
    manifest["data_sha256"] = hash_frames([read_rgb8(out / r["file"]) for r in rows]) if rows else None
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _slug(p: Picked) -> str:
    stem = Path(p.source).stem.replace(" ", "_")[:40]
    return f"{stem}_f{p.index:05d}" if p.pts_s is not None else stem


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# The repo's calib/ travels inside the package (streamer/calib links to it; a wheel holds a copy),
# so `--int8` works from any directory and from a pip-installed wheel.
DEFAULT_CALIB = Path("calib")
BUNDLED_CALIB = Path(__file__).resolve().parent.parent / "calib"


def resolve_calib(source: str | Path | None) -> Path:
    """``source``, except that the default ``calib`` (unset, or a ``calib`` folder the working
    directory does not have) means the calibration frames shipped with streamer."""
    path = Path(source) if source else DEFAULT_CALIB
    if path == DEFAULT_CALIB and not path.exists() and BUNDLED_CALIB.is_dir():
        return BUNDLED_CALIB
    return path


def _manifest_rows(folder: Path) -> list[dict[str, Any]]:
    """The frames a calibration folder's manifest lists; a damaged one is a SourceError."""
    try:
        rows = json.loads((folder / MANIFEST).read_text())["frames"]
        if not all(isinstance(r, dict) and isinstance(r["file"], str) for r in rows):
            raise TypeError("a frame without its file name")
    except (OSError, ValueError, LookupError, TypeError) as exc:
        raise SourceError(f"{folder / MANIFEST}: damaged calibration manifest ({exc}); delete it (the "
                          f"folder's images are then used in name order) or remake the set with "
                          "`streamer calib make`") from None
    return rows


def read_calib(source: str | Path, *, max_frames: int | None = None, size_hw: tuple[int, int] | None = None,
               multiple: int = 1) -> CalibSet:
    """Frames from a calibration folder (manifest order if present) or a video (varied picks).

    ``size_hw`` resizes every frame (cover fit), else frames are centre-cropped to ``multiple``.
    """
    source = resolve_calib(source)
    if source.is_dir():
        mf = source / MANIFEST
        twins: set[str] = set()
        if mf.exists():
            rows = _manifest_rows(source)
            names = [r["file"] for r in rows]
            twins = {r["file"] for r in rows if r.get("corruption")}
        else:
            names = sorted(p.name for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not names:
            raise SourceError(f"{source}: no calibration images in it; make some with "
                              f"`streamer calib make VIDEO -o {source}`")
        if max_frames and len(names) > max_frames:
            names = [names[int(k)] for k in np.linspace(0, len(names) - 1, max_frames).round()]
        images = [read_rgb8(source / n) for n in names]
    elif source.is_file():
        picks = pick_from_video(source, max_frames or 32)
        images = [p.image for p in picks]
        names = [f"{p.source}#{p.index}" for p in picks]
        twins = set()
    else:
        raise SourceError(f"{source}: calibration folder or video not found")
    if size_hw is not None:
        images = [fit_cover(im, size_hw) for im in images]
    elif multiple > 1:
        images = [crop_multiple(im, multiple) for im in images]
    images = [np.ascontiguousarray(im) for im in images]
    return CalibSet(images, hash_frames(images), str(source), names, [n in twins for n in names])
