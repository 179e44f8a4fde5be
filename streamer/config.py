"""Typed configuration: pydantic models mirror the YAML key for key.

``load_config`` is the only YAML reader; nothing past it handles raw dicts. Unknown keys and wrong
types become one ``ConfigError`` line naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from streamer.errors import ConfigError, did_you_mean
from streamer.shipped import shipped

M = TypeVar("M", bound=BaseModel)


def parse_wxh(text: str) -> tuple[int, int]:
    """``1280x720`` (or ``1280×720``) -> (width, height): every size streamer reads is WxH.
    A ValueError says what is wrong; callers add which option it was."""
    try:
        w, h = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise ValueError("expected WIDTHxHEIGHT, e.g. 1280x720") from None
    if w <= 0 or h <= 0:
        raise ValueError("width and height must be positive")
    return w, h


def _camera_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"{name!r}: a camera name goes into file names (`{{camera}}` in sinks), so it "
                         "may not be empty, hold / or \\, or start with a dot; e.g. gate-north")
    return name


CameraName = Annotated[str, AfterValidator(_camera_name)]
"""`out/{camera}.mp4` with a name like `../../etc` wrote outside `out/`."""

def _wxh_not_a_number(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):  # YAML reads `0x0` as hex
        raise ValueError(f"expected WIDTHxHEIGHT, e.g. 1280x720 (YAML read this as the number {value}; "
                         "quote it)")
    return value


WxH = Annotated[str, BeforeValidator(_wxh_not_a_number), AfterValidator(lambda v: "%dx%d" % parse_wxh(v))]
"""A `WIDTHxHEIGHT` option, checked when the config is read (not when the camera opens) and
written plainly (`1280×720` -> `1280x720`, as FFmpeg's `video_size` wants it)."""


class Strict(BaseModel):
    """Base: unknown keys are errors, field docstrings become descriptions. ``model_kwargs`` is
    ours, not pydantic's: before 2.10 pydantic warned about any field named ``model_*`` (on
    stderr, where errors are one line)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True,
                              protected_namespaces=())


class TrainConfig(Strict):
    """`streamer train --config configs/train_<model>.yaml`."""

    model: str = "fast"
    """Registered architecture to train (see `streamer models`)."""
    data: Path = Path("../shared/data/images")
    """Folder of clean photos; split into train/validation by a fixed hash rule."""
    out: Path = Path("runs/fast")
    """Where checkpoints, the metrics log and the training card go."""
    seed: int = 0
    """Seeds patch sampling, synthesis and initialisation."""
    patch: int = 128
    """Training patch side in pixels (the paper used 64)."""
    region: tuple[int, int] = (160, 384)
    """Side range of the square regions cut from a photo and corrupted as a whole, then cut into
    patches (so a patch's corruption continues past its edges). Needs max >= patch."""
    batch: int = 16
    """Patches per step."""
    steps: int = 100_000
    """Total optimisation steps (the schedule is defined over this many)."""
    optimizer: Literal["adamw", "sgd-paper"] = "adamw"
    """`sgd-paper`: Eigen et al.'s SGD, lr 0.001/(1+5t·1e-7)."""
    lr: float = 2e-3
    """Peak learning rate (AdamW) or the paper's base rate (SGD)."""
    warmup: int = Field(default=500, ge=0)
    """AdamW: steps of linear warm-up before the cosine decay."""
    loss: Literal["log-mse", "mse", "l1", "none"] = "log-mse"
    """log-mse = mean over patches of log10(MSE + loss_eps): optimises mean PSNR directly.
    none = no reconstruction loss, only `drop_loss` / `mask_loss` (e.g. training the drop finder)."""
    loss_eps: float = Field(default=1e-5, gt=0.0)
    """log-mse floor: a patch earns no more credit past PSNR = −10·log10(loss_eps) (1e-4: 40 dB).
    Too small and near-clean patches dominate the curvature, pinning the net to identity."""
    model_kwargs: dict[str, Any] = {}
    """Architecture options over the registered ones and over those stored in `weights` (a
    fine-tune keeps its file's architecture), e.g. `{drops: true}` for `fast`."""
    init: str = ""
    """The architecture's `init` option (eigen2013: paper | identity; drn: identity | default); empty = its default."""
    weights: Path | None = None
    """Fine-tune: start from these weights with a fresh optimizer and schedule, e.g. on your own
    camera's clean frames; a registered name (`fast`) means its shipped file, found wherever
    streamer is installed; ignored by --resume."""

    @field_validator("weights", mode="before")
    @classmethod
    def _shipped_weights(cls, value: Any) -> Any:
        if isinstance(value, str) and value and not Path(value).suffix and "/" not in value:
            from streamer.models import get_spec  # torch: only for a name, which training imports anyway

            try:
                path = get_spec(value).weights_path
            except ConfigError as exc:
                raise ValueError(f"{exc}; or give a .safetensors path") from None
            if path is None:
                raise ValueError(f"model {value!r} ships no weights; give a .safetensors path")
            return path
        return value
    clip_grad: float = Field(default=1.0, ge=0.0)
    """Clip the global gradient norm to this; 0 = off (the paper's SGD has no clipping)."""
    mix_dirt: float = 0.45
    """Share of patches with synthetic dirt."""
    mix_raindrop: float = 0.2
    """Share of patches with raindrops."""
    mix_streaks: float = 0.2
    """Share of patches with rain streaks; the rest stay clean."""
    dirt: dict[str, tuple[float, float]] = {}
    """Training dirt's ranges where they differ from the benchmark's (`streamer.synth.dirt.DirtParams`
    fields, e.g. `{haze: [0, 0]}`: no film); validation keeps the benchmark's dirt. For ablations."""
    clean_hard: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of all patches that are mined clean hard negatives: the highest-scoring of 32 random
    windows (see `clean_hard_kinds`). Drawn first; the mix shares apply to the rest."""
    clean_hard_kinds: list[Literal["panels", "specks", "bright"]] = Field(default=["panels"], min_length=1)
    """What the hard negatives are mined for, one kind drawn evenly per patch: `panels` = bright
    with sharp dark marks (a white sign), `specks` = many small isolated spots (pebbles on grass),
    `bright` = mostly near-white (snow, white fur, walls)."""
    clean_ohem: int = Field(default=0, ge=0)
    """Clean patches chosen by the net's own error: each step this many extra clean candidates
    are drawn and, with the batch's clean patches, the ones the net currently changes most fill
    the batch's clean slots (online hard-example mining on the clean-fidelity tail). 0 = off."""
    scene_signs: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of regions that get a procedural sign (white/yellow panel, dark or red letters) pasted
    in before corruption: panels seen clean and under dirt/rain, with their true colour."""
    mask_loss: float = Field(default=0.0, ge=0.0)
    """Weight of an auxiliary loss that makes the net's features predict where the corruption is
    (the synthetic α / drop / streak mask), through a training-only 1×1 head (attention-map
    supervision as in Qian et al., CVPR 2018). Nothing changes at inference; `fast` only; 0 = off.
    The logged training loss includes this term, so it is not comparable with runs without it."""
    drop_loss: float = Field(default=0.0, ge=0.0)
    """Weight of binary cross-entropy between `fast`'s drop finder and the synthetic drop mask
    (zero on streak and clean patches, and on dirt unless `drop_dirt_alpha`); needs a model with
    `drops: true`; 0 = off."""
    drop_dirt_alpha: float = Field(default=0.0, ge=0.0, le=1.0)
    """With `drop_loss`: on dirt patches the finder's target is the pixels whose dirt opacity α is
    at least this (near-opaque flecks hide the scene, so the fill serves them better than the
    restorer), not zero; 0 = dirt is all negative (session 27, E61)."""
    train_only: list[str] = []
    """Parameter-name prefixes to train (e.g. `[drops.]`); the rest stay frozen. Parameters under
    them may be missing from `weights`: they start from their initialisation."""
    new_parts: list[str] = []
    """Parameter-name prefixes `weights` may lack, all else trained: an architecture option added
    to older weights (e.g. `[prior.]` with `model_kwargs: {priors: true}`) starts from its init."""
    new_lr_scale: float = Field(default=1.0, gt=0.0)
    """Learning-rate multiplier for `new_parts`: a part that starts at zero beside trained weights
    barely moves at a fine-tune's small rate (E45's context stage: weights ≤ 0.004 after 3,000
    steps at 3e-5)."""
    patches_per_region: int = Field(default=1, ge=1)
    """Patches cut from each synthesised region: 1 on CPU; 2-4 keep a GPU fed (synthesis is the
    bottleneck there)."""
    workers: int = 1
    """Data-synthesis worker processes (`clean_ohem` adds ~workers·clean_ohem/(2·batch) more)."""
    threads: int = 2
    """Torch intra-op threads for the training step."""
    val_every: int = 1000
    """Validate and checkpoint every this many steps."""
    val_crop: int = 256
    """Centre crop side of validation images (speed)."""
    frame_px: tuple[int, int] = (640, 1920)
    """Training corruption is sized for a frame whose long side is drawn from this range
    (each patch is a window of such a frame): 480p to 1080p cameras."""
    val_frame_px: int = 1280
    """Validation corruption is sized for a frame this wide (720p), like `streamer eval`."""
    val_kinds: tuple[Literal["dirt", "raindrop", "streaks", "clean"], ...] = (
        "dirt", "raindrop", "streaks", "clean")
    """Corruptions validated (clean = the leave-clean-alone check); fewer = faster."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train; auto = CUDA when present."""
    max_minutes: float = Field(default=0.0, ge=0.0)
    """Stop (after a checkpoint) once this invocation has run this long; 0 = no limit. A
    resumed run gets the full time again."""
    lr_clock: Literal["steps", "time"] = "steps"
    """What the cosine schedule runs on: `steps`, or `time` = whichever of steps or
    `max_minutes` is further along, so a run on a lent machine of unknown speed still ends
    annealed when its minutes are up (then `steps` is only an upper bound)."""
    ema: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Decay of an exponential moving average of the weights (e.g. 0.999: about the last 1,000
    steps), updated after every step; validation and every weights file written (best, step,
    final) are the average's, while training goes on from the raw weights. For runs without a
    decaying rate (an average is then usable at any checkpoint); after a cosine-annealed
    fine-tune it landed within ±0.015 dB of the final weights (docs/model-log.md E51). 0 = off."""
    keep_checkpoints: bool = False
    """Also keep the weights of every validation as `step<N>.safetensors` (to pick among them
    later, e.g. with `scripts/ship_gate.py`)."""

    @model_validator(mode="after")
    def _schedule(self) -> "TrainConfig":
        if self.new_lr_scale != 1.0 and not self.new_parts:
            raise ValueError("new_lr_scale needs new_parts (the prefixes it applies to)")
        if self.lr_clock == "time" and not self.max_minutes:
            raise ValueError("lr_clock: time needs max_minutes > 0 (the schedule ends when they are up)")
        return self

    @model_validator(mode="after")
    def _region(self) -> "TrainConfig":
        if not 0 < self.region[0] <= self.region[1] or self.region[1] < self.patch:
            raise ValueError(f"region {list(self.region)}: give [min, max] with max >= patch ({self.patch})")
        return self

    @field_validator("dirt")
    @classmethod
    def _dirt_fields(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        from dataclasses import fields

        from streamer.synth import DirtParams

        known = [f.name for f in fields(DirtParams)]
        for key, (lo, hi) in v.items():
            if key not in known:
                raise ValueError(f"unknown dirt range {key!r}; known: {', '.join(known)}")
            if not 0 <= lo <= hi:
                raise ValueError(f"dirt {key}: give [min, max] with 0 <= min <= max")
        return v

    @model_validator(mode="after")
    def _losses(self) -> "TrainConfig":
        if self.drop_dirt_alpha and not self.drop_loss:
            raise ValueError("drop_dirt_alpha sets drop_loss' targets on dirt; it needs drop_loss > 0")
        if self.loss == "none" and not (self.drop_loss or self.mask_loss):
            raise ValueError("loss: none leaves nothing to train; set drop_loss or mask_loss")
        if self.drop_loss and self.mask_loss:
            raise ValueError("drop_loss and mask_loss need different masks; use one of them")
        return self



class ReconnectConfig(Strict):
    """How a lost live source is reopened: capped exponential backoff."""

    initial_s: float = Field(default=0.5, gt=0.0)
    """First wait after the camera is lost."""
    factor: float = Field(default=2.0, ge=1.0)
    """Each failed attempt multiplies the wait by this."""
    max_s: float = Field(default=10.0, gt=0.0)
    """Cap on the wait between attempts."""
    max_attempts: int = Field(default=0, ge=0)
    """Give up (SourceError) after this many failed attempts in a row; 0 = never give up."""
    retry_first_connect: bool = False
    """False: a camera unreachable at start is an error (usually a wrong URL); True: wait for it."""


class SourceConfig(Strict):
    """One camera or file: `source:`, and each entry of `cameras:` (as its `source`)."""

    url: str
    """A video file path, `rtsp://…`, or a V4L2 device `/dev/videoN`."""
    name: CameraName = "main"
    """Camera name used in logs, metrics and the web view."""
    loop: bool = False
    """Files only: start again at the end (PTS keep increasing), for demos and soak tests."""
    realtime: bool = False
    """Files only: deliver frames at their PTS pace and drop when behind, like a camera."""
    timeout_s: float = Field(default=5.0, gt=0.0)
    """Live sources: open and read timeout; a silent camera counts as lost after this."""
    size: WxH | None = None
    """USB only: capture size `WIDTHxHEIGHT` asked from the driver (None = driver default)."""
    fps: float | None = Field(default=None, gt=0.0)
    """USB only: frame rate asked from the driver (None = driver default)."""
    input_format: str | None = None
    """USB only: V4L2 pixel format, e.g. `mjpeg` (many cameras reach 30 fps at 720p only so)."""
    reconnect: ReconnectConfig = ReconnectConfig()
    """Backoff for live sources."""

    @property
    def finite(self) -> bool:
        """Whether it ends by itself (a file that does not loop): a job stopped before that end
        left a partial output, which the CLI's exit status says (130)."""
        return "://" not in self.url and not self.url.startswith("/dev/") and not self.loop


def sink_kind(url: str) -> str:
    """What a sink spec names: ``null``, ``view`` (the web page), ``rtsp-serve`` (our server),
    ``rtsp`` (push), ``scheme`` (another URL) or ``file``. Decided here only, so that e.g.
    `views/{camera}.mkv` is a file for the site, the cluster and the sinks alike."""
    if url == "null":
        return "null"
    if url == "view" or url.startswith("view:"):
        return "view"
    if url.startswith("rtsp-serve://"):
        return "rtsp-serve"
    if url.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    return "scheme" if "://" in url else "file"


class SinkConfig(Strict):
    """One output. In YAML a plain string is accepted as `{url: that string}`."""

    url: str
    """`out/x.mp4` / `.mkv` (file), `rtsp://…` (push to a server), `null`, `view`, `rtsp-serve://…`."""
    side_by_side: bool = False
    """Write the input and the cleaned frame next to each other (before | after)."""
    segment_s: float = Field(default=0.0, ge=0.0)
    """Files only: loop recording, a new file every this many seconds of video
    (`out/cam.mp4` -> `out/cam-20261127-114405-0000.mp4`, ...); 0 = one file."""
    keep: int = Field(default=0, ge=0)
    """With `segment_s`: keep the newest this many segments, deleting older ones (earlier runs'
    too), so the disk never fills; 0 = keep all."""

    @property
    def kind(self) -> str:
        """``sink_kind`` of the URL: null, view, rtsp-serve, rtsp, scheme or file."""
        return sink_kind(self.url)

    @model_validator(mode="after")
    def _segments(self) -> "SinkConfig":
        if self.keep and not self.segment_s:
            raise ValueError("keep needs segment_s (loop recording)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if value is None:  # YAML reads an unquoted `- null` (the null sink) as None
            return {"url": "null"}
        return {"url": value} if isinstance(value, str) else value


class ModelConfig(Strict):
    """Which network restores the frames."""

    name: str = "fast"
    """A registered model (`streamer models`) or a path: `.safetensors` (with `arch`), `.onnx`, `.engine`."""
    arch: str | None = None
    """Registered architecture of a `.safetensors` path (default: the `name` stem if registered)."""


class BackendConfig(Strict):
    """Where and how the network runs."""

    kind: Literal["torch", "onnxruntime", "openvino", "tensorrt"] = "torch"
    """Inference engine."""
    device: str | None = Field(default=None, pattern=r"^(cpu|cuda(:\d+)?)$")
    """cpu, cuda or cuda:N (torch on the GPU, ORT with the CUDA/TensorRT execution providers);
    unset = where the backend runs: cuda for tensorrt, cpu for the others."""
    threads: int = Field(default=0, ge=0)
    """CPU intra-op threads for the network; 0 = the engine's default (all cores)."""
    fp16: bool = True
    """Half precision on cuda (ignored on cpu)."""
    inflight: int = Field(default=2, ge=1, le=8)
    """openvino: frames in flight, each on its own CPU stream. 2 gave ~1.3× the fps of 1 on a
    2-core CPU; a frame is handed on as soon as it is done when nothing else waits (a live
    camera between frames), so the extra latency is only that of a queue that is already there. torch on cuda and tensorrt:
    frames whose upload, network and download are queued on the GPU while the CPU decodes and
    encodes. With `cameras:` these are network calls (batches of several cameras' frames)."""
    int8: bool | Literal["all"] = False
    """onnxruntime/openvino: run the model quantized to INT8 (static, calibrated on `calib`;
    built on first use and cached in ~/.cache/streamer). `all` also quantizes the layers the
    model keeps fp32 for quality (fast-drops' drop finder and heads): faster, costs more gain."""
    calib: Path = Path("calib")
    """Calibration frames for `int8` (a folder from `streamer calib make`, or a video)."""

    @field_validator("int8", mode="before")
    @classmethod
    def _int8(cls, value: Any) -> Any:
        if isinstance(value, bool) or value == "all":  # one message, not one per branch of the union
            return value
        raise ValueError(f"{value!r}: use true, false or all")


class TilingConfig(Strict):
    """Frames larger than `tile` run in overlapping sections blended without seams."""

    tile: int = Field(default=0, ge=0)
    """Tile side in pixels (rounded up to the model's multiple); 0 = whole frames. `fast`'s
    frame-wide context is then per tile: about even on average, but ±0.15 dB per frame at 720p in
    736-px tiles and down to −0.4 dB for 4K in 1024-px tiles (`scripts/tile_context.py`), so keep
    tiles large (2048) or frames whole where memory allows."""
    overlap: int = Field(default=32, ge=0)
    """Pixels shared by neighbouring tiles; must exceed the model's receptive-field radius x2."""


class PreprocessConfig(Strict):
    """Done to every frame before the network."""

    resize: WxH | None = None
    """`WIDTHxHEIGHT` to scale frames to before the network (None = keep the camera size)."""
    tiling: TilingConfig = TilingConfig()
    """Overlapping tiles for big frames."""


class EncoderConfig(Strict):
    """H.264 settings shared by file and RTSP sinks."""

    codec: str = "libx264"
    """FFmpeg encoder name."""
    preset: str = "veryfast"
    """x264 speed/size trade-off."""
    crf: int = Field(default=23, ge=0, le=51)
    """Constant quality (lower = better, bigger)."""
    keyframe_s: float = Field(default=1.0, gt=0.0)
    """Keyframe (and MP4 fragment) interval: a killed run loses at most this much video."""
    threads: int = Field(default=0, ge=0)
    """Encoder threads; 0 = FFmpeg's choice."""

    @model_validator(mode="after")
    def _known_preset(self) -> "EncoderConfig":
        """x264/x265 presets are checked here: FFmpeg would only fail at the first frame, with
        "Invalid argument" (other encoders name theirs differently and are left to FFmpeg)."""
        if self.codec in ("libx264", "libx265") and self.preset not in X264_PRESETS:
            hint = did_you_mean(self.preset, X264_PRESETS)
            raise ValueError(f"preset {self.preset!r}: {hint + ' ' if hint else ''}{self.codec} knows {', '.join(X264_PRESETS)}")
        return self


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")


class CameraConfig(Strict):
    """One camera of a site (`cameras:`); `model`/`preprocess` left out = the site's."""

    name: CameraName
    """Unique camera name: logs, metrics labels, the web view tile, `{camera}` in sink paths."""
    source: SourceConfig
    """Where its frames come from; a plain string is accepted as `{url: that string}`."""
    sinks: list[SinkConfig] = Field(default_factory=list)
    """This camera's own outputs (the site-wide `sinks` are added to them)."""
    model: ModelConfig | None = None
    """Another network for this camera; cameras with equal model and preprocess share batches."""
    preprocess: PreprocessConfig | None = None
    """Other resize/tiling for this camera."""

    @model_validator(mode="before")
    @classmethod
    def _source_from_string(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("source"), str):
            return {**value, "source": {"url": value["source"]}}
        return value


class BatchingConfig(Strict):
    """Multi-camera runs: frames of equal size from several cameras go through one network call."""

    max_batch: int = Field(default=8, ge=1)
    """Most frames per network call (one per camera per call); 1 = no batching."""
    timeout_ms: float = Field(default=20.0, ge=0.0)
    """After the first frame of a batch, wait at most this long for the other cameras' frames."""


class ClusterConfig(Strict):
    """`streamer cluster`: cameras spread over Ray actors on the cluster's nodes."""

    cameras_per_actor: int = Field(default=4, ge=1)
    """Cameras run (and batched) together in one actor process."""
    num_cpus: float = Field(default=1.0, ge=0.0)
    """Ray CPUs reserved per actor; placement uses it, so a node runs floor(its CPUs / this) actors."""
    num_gpus: float = Field(default=0.0, ge=0.0)
    """Ray GPUs per actor (fractions share a GPU); > 0 places actors on GPU nodes only."""
    max_restarts: int = Field(default=-1, ge=-1)
    """Ray restarts of an actor whose process or node died (-1 = always); the supervisor re-creates beyond that."""
    metrics_port: int = Field(default=9400, ge=0, le=65535)
    """Head process serves the merged `/metrics` of all actors here (0 = any free port)."""
    metrics_host: str = "127.0.0.1"
    """Address the head's `/metrics` binds to; anything but loopback needs `$STREAMER_TOKEN` (bearer)."""
    poll_s: float = Field(default=2.0, gt=0.0)
    """How often the head collects status and metrics from the actors."""


class RunConfig(Strict):
    """`streamer run --config configs/<name>.yaml`: one camera (`source:`) or a site (`cameras:`)."""

    source: SourceConfig | None
    """The camera or file to read (one camera); use `cameras:` for several."""
    cameras: list[CameraConfig] = Field(default_factory=list)
    """A site: several cameras in one process, batched together (see `batching`)."""
    sinks: list[SinkConfig] = Field(default_factory=lambda: [SinkConfig(url="null")], min_length=1)
    """Outputs, all fed the same cleaned frames; with `cameras:` every camera gets them
    (`view` is one shared page; file paths need `{camera}`, e.g. `out/{camera}.mp4`; one RTSP
    server per port, a path per camera: `rtsp-serve://127.0.0.1:8554/{camera}`)."""
    model: ModelConfig = ModelConfig()
    """The restoration network."""
    backend: BackendConfig = BackendConfig()
    """The inference engine."""
    preprocess: PreprocessConfig = PreprocessConfig()
    """Resize and tiling."""
    encoder: EncoderConfig = EncoderConfig()
    """Video encoder for file and RTSP sinks."""
    max_frames: int = Field(default=0, ge=0)
    """Stop after this many frames written; 0 = until the source ends (or forever for cameras)."""
    queue_frames: int = Field(default=4, ge=1)
    """Bound of each queue between stages; live sources drop the oldest frame when full."""
    stats_every_s: float = Field(default=10.0, ge=0.0)
    """Live runs: log a stats line this often; 0 = never."""
    batching: BatchingConfig = BatchingConfig()
    """How `cameras:` share network calls."""
    cluster: ClusterConfig = ClusterConfig()
    """How `streamer cluster` places the cameras on Ray."""

    @model_validator(mode="before")
    @classmethod
    def _short_forms_and_sites(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        value = _expand_short_forms(value)
        if value.get("cameras") and "source" not in value:
            return {**value, "source": None}  # otherwise `source` stays required
        return value

    @model_validator(mode="after")
    def _one_camera_or_a_site(self) -> "RunConfig":
        if (self.source is None) == (not self.cameras):
            raise ValueError("give either `source:` (one camera) or `cameras:` (a site), not both or neither "
                             "(--source sets `source:`; in a site each camera names its own)")
        names = [c.name for c in self.cameras]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"camera names must be unique; {', '.join(dup)} repeats")
        _no_file_written_twice(self.camera_list())
        return self

    def camera_list(self) -> list[CameraConfig]:
        """Every camera with site defaults filled in; a `source:` config is one camera."""
        if self.source is not None:
            return [CameraConfig(name=self.source.name, source=self.source,
                                 sinks=_named(self.sinks, self.source.name),
                                 model=self.model, preprocess=self.preprocess)]
        out = []
        shared = list(self.sinks) if "sinks" in self.model_fields_set else []
        for cam in self.cameras:
            sinks = _named([*cam.sinks, *shared], cam.name) or [SinkConfig(url="null")]
            out.append(cam.model_copy(update={
                "source": cam.source.model_copy(update={"name": cam.name}), "sinks": sinks,
                "model": cam.model or self.model, "preprocess": cam.preprocess or self.preprocess}))
        return out


def _local_file(url: str) -> Path | None:
    """A video file path in a source or sink (resolved), else None (URLs, cameras, null, view)."""
    if url in ("null", "view") or url.startswith(("view:", "/dev/")) or "://" in url or not Path(url).suffix:
        return None
    return Path(url).resolve()  # as the sources and sinks open it (no ~ expansion there either)


def stream_target(url: str) -> tuple[str, str, int, str] | None:
    """(kind, host, port, path) of an ``rtsp-serve://`` or ``rtsp://`` push sink with the
    defaults filled in, so two spellings of one stream compare equal: rtsp-serve 127.0.0.1, 8554,
    /clean (``rtsp_serve.parse_url``); push port 554 (rtsps 322); ``localhost`` is 127.0.0.1; no
    login. None for other sinks and for a port that is no number (the sink says so when it opens)."""
    from urllib.parse import urlsplit

    kind = sink_kind(url)
    if kind not in ("rtsp-serve", "rtsp"):
        return None
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "127.0.0.1").lower()  # urlsplit lowercases it already
    host = "127.0.0.1" if host == "localhost" else host
    if port is None:
        port = 8554 if kind == "rtsp-serve" else 322 if parts.scheme == "rtsps" else 554
    if kind == "rtsp-serve":  # port 0: any free one (tests)
        return kind, host, port, parts.path if parts.path not in ("", "/") else "/clean"
    return kind, host, port, parts.path


def _no_file_written_twice(cameras: list[CameraConfig]) -> None:
    """A sink that is its own source would overwrite the recording it reads (exit 0, original
    gone); two sinks on one file would interleave (two loop recorders on one name would also
    delete each other's segments); two publishers on one stream URL fight over it. Refused before
    anything opens. ``null`` and ``view`` (one server for every camera) are not targets."""
    inputs = {p: c.name for c in cameras if (p := _local_file(c.source.url))}
    written: dict[Path | str, str] = {}
    for cam in cameras:
        for sink in cam.sinks:
            if sink.kind in ("null", "view"):
                continue
            path = _local_file(sink.url) if sink.kind == "file" else None
            if path in inputs and not sink.segment_s:  # segments get names of their own
                raise ValueError(f"sink {sink.url}: is the source of camera {inputs[path]}; writing it would "
                                 "replace the recording being read; write to another file")
            target = path or stream_target(sink.url) or sink.url  # as the sink pool keys servers
            if target in written:
                what = "this file is written twice" if path else "this stream is published twice"
                who = (f"by camera {cam.name}" if written[target] == cam.name
                       else f"by cameras {written[target]} and {cam.name}; e.g. put {{camera}} in the name")
                raise ValueError(f"sink {sink.url}: {what} ({who})")
            written[target] = cam.name


def _named(sinks: list[SinkConfig], camera: str) -> list[SinkConfig]:
    """``{camera}`` in each sink's URL filled in with the camera's name."""
    return [s.model_copy(update={"url": s.url.replace("{camera}", camera)}) for s in sinks]


SHORT_FORMS = {"source": "url", "model": "name"}  # `source: a.mp4` = `source: {url: a.mp4}` (run configs)


def _expand_short_forms(data: dict[str, Any]) -> dict[str, Any]:
    return {k: {SHORT_FORMS[k]: v} if k in SHORT_FORMS and isinstance(v, str) else v for k, v in data.items()}


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides win; nested dicts merge key by key; None means "not given". A short form in the
    YAML (`model: fast-drops`) merges as its long form (`model: {name: fast-drops}`)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and key in SHORT_FORMS and isinstance(out.get(key), str):
            out[key] = {SHORT_FORMS[key]: out[key]}
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(out.get(key, {}), dict):
            merged = _merge(out.get(key, {}), value)
            if merged or key in out:
                out[key] = merged
        else:
            out[key] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """A key given twice in one mapping is an error: PyYAML keeps the last silently, so a second
    `sinks:` (or `source:`) further down replaced the first without a word."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._checked: set[int] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Each mapping is checked as written, once, before its `<<` merges are flattened into it:
        # one merged elsewhere (`<<: *rec`) may be flattened there before it is built itself,
        # and then holds its merged keys beside its own (which override them: fine).
        if id(node) not in self._checked:
            self._checked.add(id(node))
            seen: set = set()
            for key_node, _ in node.value:  # `<<: *defaults` and keys over it are fine
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    key = self.construct_object(key_node)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice",
                                                                key_node.start_mark)
                    seen.add(key)
        super().flatten_mapping(node)


def load_config(cls: type[M], path: str | Path | None, overrides: dict[str, Any] | None = None) -> M:
    """Read YAML at ``path`` (or nothing), apply ``overrides``, validate into ``cls``."""
    data: dict[str, Any] = {}
    label = "<defaults>"
    if path is not None:
        # configs/demo.yaml and the other examples are shipped: they run from any folder; errors
        # then name the file actually read
        path = shipped(path)
        label = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")  # YAML is UTF-8 whatever the locale says
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from exc
        except UnicodeDecodeError as exc:  # a video or a binary given as --config
            raise ConfigError(f"{path}: not a YAML text file (byte {exc.start} is not UTF-8); "
                              "give a config like configs/demo.yaml") from exc
        try:
            loaded = yaml.load(text, Loader=_UniqueKeyLoader)
        except yaml.reader.ReaderError as exc:  # its own str() is two lines
            line = text.count("\n", 0, exc.position) + 1
            raise ConfigError(f"{path}: line {line} malformed YAML (control character #x{exc.character:04x} "
                              "is not allowed; a binary file?)") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}:{where} malformed YAML ({getattr(exc, 'problem', exc)})") from exc
        except RecursionError as exc:
            raise ConfigError(f"{path}: malformed YAML (nested too deeply)") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping of keys, not {type(loaded).__name__}")
        data = loaded
    return check_config(cls, _merge(data, overrides or {}), label)


def check_config(cls: type[M], data: dict[str, Any], label: str) -> M:
    """Validate ``data`` as it is into ``cls``; an error is one line, ``label: key: what``. (An
    API caller's dict comes here, not through ``_merge``, which would drop its ``None``s and
    empty sections, typos included, as "not given".)"""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()  # a typo'd key first: it explains a "required" one beside it
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        where = ".".join(map(str, first["loc"]))
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        if first["type"] == "value_error":  # our validators' own words, without pydantic's prefix
            msg = msg.removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            hint = did_you_mean(str(first["loc"][-1]), _keys_at(cls, first["loc"][:-1]), 0.7)
            msg += f" ({hint})" if hint else ""
        raise ConfigError(f"{label}: {where}: {msg}" if where else f"{label}: {msg}") from exc


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside a field's type (``X``, ``list[X]``, ``X | str``, ...), if any."""
    if get_origin(annotation) is None and isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation  # (`list[X]` passes isinstance(…, type) on Python 3.10: origin first)
    return next((m for a in get_args(annotation) if (m := _model_in(a)) is not None), None)


def _keys_at(cls: type[BaseModel], loc: tuple) -> list[str]:
    """The keys valid at ``loc`` (a pydantic error location), for a typo's suggestion."""
    model = cls
    for part in loc:
        if isinstance(part, int):  # an index into a list of models
            continue
        field = model.model_fields.get(str(part))
        inner = _model_in(field.annotation) if field else None
        if inner is None:  # union tags (pydantic puts the branch's class name in loc)
            return []
        model = inner
    return list(model.model_fields)
