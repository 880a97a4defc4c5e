"""`faces`: 64x64 RGB cartoon faces drawn from a seed, each with its attributes and generative factors.

Ten factors (FACTOR_NAMES, ranges in RANGES): mouth curvature from frown (-1) to smile (+1), eyeglasses (0/1), hair
colour (0..3: black, blond, brown, gray), skin tone (0 light .. 1 dark), eye openness (0.15 nearly shut .. 1 wide),
face width (0 narrow .. 1 wide), head position pos_x and pos_y (-1..1, at most SHIFT pixels), head tilt in degrees
(-12..12, clockwise as seen) and background hue (0..1, a colour wheel). The binary attributes carry CelebA's names
(ATTRIBUTE_NAMES): Smiling is curvature > 0; a drawn image never has |curvature| < MIN_CURVATURE, so every mouth is
visibly bent one way or the other. The labels are Smiling, classes ("not smiling", "smiling").

Drawing: each part is a signed distance in the head's own frame (pixels, centred, untilted, y down), turned into
coverage with a one-pixel soft edge and painted back to front: background, hair (an ellipse behind the head), face
(below its hairline), eye whites, irises and glasses, mouth. Each part is computed only inside a fixed window that
holds it at any position, width and tilt (the head's, about 54x52 pixels; the eyes'; the mouth's), which is what
makes 70,000 faces take seconds. Only single IEEE operations act on pixels (no fused multiply-adds; trigonometry per
face in Python), so a face's pixels do not depend on the batch it is drawn in, nor on the thread count:
render(stored factors) gives the images back bit for bit. `faces` is 60,000 train + 10,000 test images; `faces:N` is the first N of the same training stream
beside the same test images.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.data.dataset import Dataset
from genlab.data.factors import FactorGrid, bin_centres, read_only
from genlab.errors import DataError
from genlab.images import GridLabels, labelled_grid, save_png

FACTOR_NAMES = ("mouth_curvature", "eyeglasses", "hair_colour", "skin_tone", "eye_openness", "face_width", "pos_x",
                "pos_y", "tilt", "background_hue")
RANGES = {"mouth_curvature": (-1.0, 1.0), "skin_tone": (0.0, 1.0), "eye_openness": (0.15, 1.0),
          "face_width": (0.0, 1.0), "pos_x": (-1.0, 1.0), "pos_y": (-1.0, 1.0), "tilt": (-12.0, 12.0),
          "background_hue": (0.0, 1.0)}  # the continuous factors; the others are categories 0..n-1
HAIR_COLOURS = ("black", "blond", "brown", "gray")
CATEGORIES = {"eyeglasses": 2, "hair_colour": len(HAIR_COLOURS)}
NEUTRAL = {"mouth_curvature": 0.0, "eyeglasses": 0.0, "hair_colour": 2.0, "skin_tone": 0.3, "eye_openness": 0.7,
           "face_width": 0.5, "pos_x": 0.0, "pos_y": 0.0, "tilt": 0.0, "background_hue": 0.55}  # render's defaults
ATTRIBUTE_NAMES = ("Smiling", "Eyeglasses", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Narrow_Eyes",
                   "Pale_Skin")
CLASSES = ("not smiling", "smiling")
MIN_CURVATURE = 0.3     # drawn faces have |mouth_curvature| in [0.3, 1]: never a straight, ambiguous mouth
GLASSES_SHARE = 0.4     # of drawn faces wearing glasses
NARROW_EYES = 0.4       # Narrow_Eyes: eye_openness below this
PALE_SKIN = 0.25        # Pale_Skin: skin_tone below this
TRAIN_IMAGES, TEST_IMAGES, MAX_TRAIN = 60_000, 10_000, 200_000
TRAIN_SEED, TEST_SEED = 0, 1  # two streams: faces:N takes the first N training faces, the test faces never change

SIZE = 64
CENTRE = (32.0, 33.0)   # head centre (x, y) in pixels at pos_x = pos_y = 0
SHIFT = 3.0             # pixels the head moves at pos_x or pos_y = +-1
FACE_HALF_HEIGHT = 19.0
FACE_HALF_WIDTH = (12.0, 18.0)  # at face_width 0 and 1
HAIR_LIFT, HAIR_MARGIN = 4.0, (3.0, 2.0)  # the hair: an ellipse above and around the face
EYE_Y, EYE_SPREAD, EYE_HALF_WIDTH, IRIS_RADIUS = -3.0, 0.45, 3.4, 2.0  # eyes at x = +-EYE_SPREAD * half-width
GLASSES_RADIUS, GLASSES_THICKNESS = 5.0, 1.3
MOUTH_Y, MOUTH_SPREAD, MOUTH_DEPTH, MOUTH_THICKNESS = 10.5, 0.5, 6.0, 2.6  # depth: corners vs middle at |c| = 1
SKIN = np.array([[250.0, 222.0, 196.0], [140.0, 90.0, 60.0]])  # skin_tone 0 and 1
HAIR_RGB = np.array([[28.0, 24.0, 24.0], [236.0, 204.0, 112.0], [118.0, 70.0, 34.0], [170.0, 170.0, 176.0]])
EYE_WHITE, DARK, LIPS = (250.0, 250.0, 250.0), (20.0, 20.0, 28.0), (110.0, 22.0, 34.0)
RENDER_CHUNK = 128      # faces drawn at once: their float32 planes stay in cache


def feature_window(points: list[tuple[float, float]]) -> tuple[slice, slice]:
    """Rows and columns of the frame holding every pixel within 1.5 px of the outline through these head-frame
    points (u, v) (convex), at any position and tilt."""
    xs, ys = [], []
    for degrees in np.linspace(*RANGES["tilt"], 49):
        cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
        xs += [cos * u - sin * v for u, v in points]
        ys += [sin * u + cos * v for u, v in points]
    low_x, high_x = CENTRE[0] + min(xs) - SHIFT - 1.5, CENTRE[0] + max(xs) + SHIFT + 1.5
    low_y, high_y = CENTRE[1] + min(ys) - SHIFT - 1.5, CENTRE[1] + max(ys) + SHIFT + 1.5
    return (slice(max(0, math.floor(low_y)), min(SIZE, math.ceil(high_y))),
            slice(max(0, math.floor(low_x)), min(SIZE, math.ceil(high_x))))


def box(u_half: float, v_low: float, v_high: float) -> list[tuple[float, float]]:
    """The corners of the head-frame box |u| <= u_half, v_low <= v <= v_high."""
    return [(u, v) for u in (-u_half, u_half) for v in (v_low, v_high)]


def ellipse(u_half: float, v_half: float, v_centre: float = 0.0) -> list[tuple[float, float]]:
    """Points around an ellipse in the head frame, 1 degree apart."""
    angles = np.radians(np.arange(360))
    return list(zip(u_half * np.cos(angles), v_centre + v_half * np.sin(angles)))


HEAD_WINDOW = feature_window(ellipse(FACE_HALF_WIDTH[1], FACE_HALF_HEIGHT) + ellipse(
    FACE_HALF_WIDTH[1] + HAIR_MARGIN[0], FACE_HALF_HEIGHT + HAIR_MARGIN[1], -HAIR_LIFT))
EYE_REACH = EYE_SPREAD * FACE_HALF_WIDTH[1] + GLASSES_RADIUS + GLASSES_THICKNESS
EYE_WINDOW = feature_window(box(EYE_REACH, EYE_Y - GLASSES_RADIUS - GLASSES_THICKNESS,
                                EYE_Y + GLASSES_RADIUS + GLASSES_THICKNESS))
MOUTH_WINDOW = feature_window(box(MOUTH_SPREAD * FACE_HALF_WIDTH[1] + MOUTH_THICKNESS,
                                  MOUTH_Y - MOUTH_DEPTH / 2 - MOUTH_THICKNESS,
                                  MOUTH_Y + MOUTH_DEPTH / 2 + MOUTH_THICKNESS))


def factor_array(factors: Mapping[str, object] | np.ndarray | Tensor) -> np.ndarray:
    """float32 (n, K) factor values, from (n, K) or (K,) values in FACTOR_NAMES order or a dict of name -> float or
    (n,) values (missing names take NEUTRAL's), checked against RANGES and CATEGORIES."""
    if isinstance(factors, Mapping):
        unknown = sorted(set(factors) - set(FACTOR_NAMES))
        if unknown:
            raise DataError(f"faces has no factor {', '.join(map(repr, unknown))}; its factors are "
                            f"{', '.join(FACTOR_NAMES)}")
        try:
            columns = np.broadcast_arrays(*(np.asarray(factors.get(name, NEUTRAL[name]), dtype=np.float64)
                                            for name in FACTOR_NAMES))
        except (TypeError, ValueError) as err:
            raise DataError(f"faces factors must be numbers or (n,) arrays of one length: {err}") from None
        if columns[0].ndim > 1:
            raise DataError(f"faces factors given by name must be numbers or (n,) arrays, got shape {columns[0].shape}")
        values = np.stack([np.atleast_1d(column) for column in columns], axis=1)
    else:
        values = np.asarray(factors.cpu() if isinstance(factors, Tensor) else factors, dtype=np.float64)
        values = values[None] if values.ndim == 1 else values
        if values.ndim != 2 or values.shape[1] != len(FACTOR_NAMES):
            raise DataError(f"faces factors must be an array (n, {len(FACTOR_NAMES)}) with columns "
                            f"{', '.join(FACTOR_NAMES)}; got shape {values.shape}")
    check_values(values)
    return values.astype(np.float32)


def check_values(values: np.ndarray) -> None:
    """A DataError naming the first factor outside its range, or a category that is not one of its levels."""
    for k, name in enumerate(FACTOR_NAMES):
        column = values[:, k]
        if name in CATEGORIES:
            bad = ~np.isin(column, np.arange(CATEGORIES[name]))
            allowed = f"one of 0..{CATEGORIES[name] - 1}"
        else:
            low, high = RANGES[name]
            bad = ~((column >= low - 1e-6) & (column <= high + 1e-6))
            allowed = f"in [{low:g}, {high:g}]"
        if bad.any():
            raise DataError(f"faces factor {name!r} must be {allowed}; got {column[bad][0]:g}")


def per_face(values: np.ndarray) -> dict[str, Tensor]:
    """float32 (n, K) factor values -> the per-face drawing constants, float32 (n,), colours (n, 3) in 0.5..255.5
    (so that truncating to uint8 rounds). Computed in float64 with Python's trigonometry: the same in any batch."""
    v = {name: values[:, k].astype(np.float64) for k, name in enumerate(FACTOR_NAMES)}
    radians = [math.radians(t) for t in v["tilt"]]
    half_width = FACE_HALF_WIDTH[0] + (FACE_HALF_WIDTH[1] - FACE_HALF_WIDTH[0]) * v["face_width"]
    eye_height = 0.3 + 3.0 * v["eye_openness"]
    skin = SKIN[0] + (SKIN[1] - SKIN[0]) * v["skin_tone"][:, None]
    constants = {"cos": [math.cos(r) for r in radians], "sin": [math.sin(r) for r in radians],
                 "x": CENTRE[0] + SHIFT * v["pos_x"], "y": CENTRE[1] + SHIFT * v["pos_y"],
                 "inverse_width": 1 / half_width, "face_scale": np.sqrt(half_width * FACE_HALF_HEIGHT),
                 "inverse_hair_width": 1 / (half_width + HAIR_MARGIN[0]),
                 "hair_scale": np.sqrt((half_width + HAIR_MARGIN[0]) * (FACE_HALF_HEIGHT + HAIR_MARGIN[1])),
                 "eye_x": EYE_SPREAD * half_width, "inverse_eye_height": 1 / eye_height,
                 "eye_scale": np.sqrt(eye_height * EYE_HALF_WIDTH), "glasses": v["eyeglasses"],
                 "mouth_half_width": MOUTH_SPREAD * half_width,
                 "inverse_mouth_half_width": 1 / (MOUTH_SPREAD * half_width),
                 "mouth_bend": MOUTH_DEPTH * v["mouth_curvature"], "skin": skin + 0.5,
                 "hair": HAIR_RGB[np.rint(v["hair_colour"]).astype(np.int64)] + 0.5,
                 "background": hue_colour(v["background_hue"]) + 0.5}
    return {name: torch.from_numpy(np.asarray(value, dtype=np.float32)) for name, value in constants.items()}


def hue_colour(hue: np.ndarray) -> np.ndarray:
    """float64 (n, 3) pastel RGB in 0..255 around the colour wheel, hue in [0, 1] (0 and 1 both red)."""
    offsets = np.array([0.0, 2 / 3, 1 / 3])  # red, green, blue peak a third of the wheel apart
    distance = np.abs(((hue[:, None] - offsets[None]) % 1.0) * 6.0 - 3.0)  # 3 at the peak, 0 opposite
    return 120.0 + 120.0 * np.clip(distance - 1.0, 0.0, 1.0)


# Pixels see only single IEEE operations (no fused multiply-add, no division by a per-face constant, which torch
# turns into a multiplication when the batch holds one face): a face's pixels do not depend on its batch.

def coverage(distance: Tensor) -> Tensor:
    """Signed distance in pixels (negative inside) -> coverage in [0, 1] with a one-pixel soft edge, in place."""
    return distance.neg_().add_(0.5).clamp_(0.0, 1.0)


def ellipse_coverage(u: Tensor, v: Tensor, inverse_a: Tensor | float, inverse_b: Tensor | float,
                     scale: Tensor) -> Tensor:
    """Coverage of the ellipse (u / a)^2 + (v / b)^2 <= 1, its distance approximated as (q - 1) * scale, scale ~
    sqrt(ab): clamp(1/2 - (q - 1) scale, 0, 1)."""
    q = (u * inverse_a).square_().add_((v * inverse_b).square_()).sqrt_()
    return q.mul_(-scale).add_(scale + 0.5).clamp_(0.0, 1.0)


def paint(image: Tensor, alpha: Tensor, colour: Tensor) -> None:
    """image (B, 3, h, w) <- image + alpha (B, h, w) * (colour - image), colour (B, 3) or (3,); in place."""
    colour = colour.view(-1, 3, 1, 1) if colour.dim() == 2 else colour.view(1, 3, 1, 1)
    image.add_((colour - image).mul_(alpha.unsqueeze(1)))


def plane(c: dict[str, Tensor], name: str) -> Tensor:
    """A per-face constant (B,) as (B, 1, 1), to broadcast over pixels."""
    return c[name].view(-1, 1, 1)


def head_frame(c: dict[str, Tensor], rows: slice, columns: slice) -> tuple[Tensor, Tensor]:
    """Pixel centres of the frame's rows x columns in each head's frame: u, v float32 (B, h, w), pixels, y down."""
    dx = (torch.arange(columns.start, columns.stop, dtype=torch.float32) + 0.5).view(1, 1, -1) - plane(c, "x")
    dy = (torch.arange(rows.start, rows.stop, dtype=torch.float32) + 0.5).view(1, -1, 1) - plane(c, "y")
    cos, sin = plane(c, "cos"), plane(c, "sin")
    return (cos * dx) + (sin * dy), (cos * dy) - (sin * dx)  # turned by -tilt: a face tilted by +tilt is upright


def head_layers(u: Tensor, v: Tensor, c: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Coverage (B, h, w) of the hair (an ellipse behind the head) and of the face below the hairline."""
    hair = ellipse_coverage(u, v + HAIR_LIFT, plane(c, "inverse_hair_width"), 1 / (FACE_HALF_HEIGHT + HAIR_MARGIN[1]),
                            plane(c, "hair_scale"))
    face = ellipse_coverage(u, v, plane(c, "inverse_width"), 1 / FACE_HALF_HEIGHT, plane(c, "face_scale"))
    # the hairline dips from 8 px above the centre line to 3 px at the temples: v > -8 + 5 (u / a)^2 is face
    hairline = (u * plane(c, "inverse_width")).square_().mul_(5.0).sub_(8.0)
    return hair, torch.minimum(coverage(hairline.sub_(v)), face)


def eye_layers(u: Tensor, v: Tensor, c: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Coverage (B, h, w) of the eye whites, and of the irises (cut by the eyelids) with the glasses; both eyes at
    once (|u|)."""
    du, dv = u.abs().sub_(plane(c, "eye_x")), v - EYE_Y  # from the nearer eye's centre
    white = ellipse_coverage(du, dv, 1 / EYE_HALF_WIDTH, plane(c, "inverse_eye_height"), plane(c, "eye_scale"))
    radius = (du.square()).add_(dv.square()).sqrt_()
    iris = torch.minimum(coverage(radius - IRIS_RADIUS), white)
    ring = coverage(radius.sub_(GLASSES_RADIUS).abs_().sub_(GLASSES_THICKNESS / 2))
    inner_edge = (GLASSES_RADIUS - 0.2) - plane(c, "eye_x")  # the bridge: from u = 0 to each ring's inner edge
    bridge = coverage(torch.maximum(du.add_(inner_edge), dv.abs_().sub_(GLASSES_THICKNESS / 2)))
    return white, torch.maximum(iris, torch.maximum(ring, bridge).mul_(plane(c, "glasses")))


def mouth_layer(u: Tensor, v: Tensor, c: dict[str, Tensor]) -> Tensor:
    """Coverage (B, h, w) of the mouth: the parabola v = MOUTH_Y + bend (1/2 - (u / w)^2) for |u| <= w,
    MOUTH_THICKNESS px thick with round ends; bend > 0 (a smile) puts the corners above the middle."""
    w, bend = plane(c, "mouth_half_width"), plane(c, "mouth_bend")
    along = torch.minimum(torch.maximum(u, -w), w)  # the nearest point's u, within the mouth
    t = along * plane(c, "inverse_mouth_half_width")
    curve = (0.5 - t.square()).mul_(bend).add_(MOUTH_Y)
    slope = t.mul_(bend).mul_(plane(c, "inverse_mouth_half_width")).mul_(-2.0)  # dv/du of the curve
    across = (v - curve).div_(slope.square_().add_(1.0).sqrt_())  # ~ distance normal to the curve
    return coverage(u.sub_(along).square_().add_(across.square_()).sqrt_().sub_(MOUTH_THICKNESS / 2))


def inside(window: tuple[slice, slice], outer: tuple[slice, slice]) -> tuple[slice, slice]:
    """A window of the frame as slices of the outer window that holds it."""
    rows, columns = (slice(w.start - o.start, w.stop - o.start) for w, o in zip(window, outer))
    return rows, columns


def draw(c: dict[str, Tensor], out: Tensor) -> None:
    """Per-face constants of B faces -> their uint8 (B, 3, 64, 64) images in out: painted back to front in float
    within HEAD_WINDOW (outside it there is only background)."""
    background = c["background"].view(-1, 3, 1, 1)
    out.copy_(background.expand_as(out))  # float to uint8 truncates: the colours carry +0.5
    hair, face = head_layers(*head_frame(c, *HEAD_WINDOW), c)
    image = (c["hair"].view(-1, 3, 1, 1) - background).mul(hair.unsqueeze(1)).add_(background)  # paint() on a plain
    paint(image, face, c["skin"])
    eyes = image[(slice(None), slice(None), *inside(EYE_WINDOW, HEAD_WINDOW))]  # a view: painted in place
    white, dark = eye_layers(*head_frame(c, *EYE_WINDOW), c)
    paint(eyes, white, torch.tensor(EYE_WHITE) + 0.5)
    paint(eyes, dark, torch.tensor(DARK) + 0.5)
    mouth = image[(slice(None), slice(None), *inside(MOUTH_WINDOW, HEAD_WINDOW))]
    paint(mouth, mouth_layer(*head_frame(c, *MOUTH_WINDOW), c), torch.tensor(LIPS) + 0.5)
    out[:, :, HEAD_WINDOW[0], HEAD_WINDOW[1]] = image


def render(factors: Mapping[str, object] | np.ndarray | Tensor) -> Tensor:
    """uint8 (n, 3, 64, 64) faces for factor values: float (n, K) or (K,) in FACTOR_NAMES order, or a dict of
    name -> float or (n,) array, missing names taking NEUTRAL's values. render(data.test_factors) gives the test
    images back exactly; change a column (e.g. mouth_curvature) for the same faces with that one factor changed."""
    constants = per_face(factor_array(factors))
    n = len(constants["x"])
    out = torch.empty(n, 3, SIZE, SIZE, dtype=torch.uint8)
    for start in range(0, n, RENDER_CHUNK):
        draw({name: value[start:start + RENDER_CHUNK] for name, value in constants.items()},
             out[start:start + RENDER_CHUNK])
    return out


def sample_values(n: int, seed: int) -> np.ndarray:
    """float32 (n, K) factor values of drawn faces; row i depends only on the seed and i (a prefix of a longer draw)."""
    u = np.random.default_rng(seed).random((n, len(FACTOR_NAMES)))
    columns = []
    for k, name in enumerate(FACTOR_NAMES):
        if name == "mouth_curvature":  # |c| uniform in [MIN_CURVATURE, 1], either sign
            bend = MIN_CURVATURE + (1 - MIN_CURVATURE) * np.abs(2 * u[:, k] - 1)
            columns.append(np.where(u[:, k] < 0.5, -bend, bend))
        elif name == "eyeglasses":
            columns.append((u[:, k] < GLASSES_SHARE).astype(np.float64))
        elif name in CATEGORIES:
            columns.append(np.minimum(np.floor(u[:, k] * CATEGORIES[name]), CATEGORIES[name] - 1))
        else:
            low, high = RANGES[name]
            columns.append(low + (high - low) * u[:, k])
    return np.stack(columns, axis=1).astype(np.float32)


def attributes_of(values: np.ndarray | Tensor) -> Tensor:
    """bool (n, len(ATTRIBUTE_NAMES)) for float (n, K) factor values."""
    column = dict(zip(FACTOR_NAMES, torch.as_tensor(np.asarray(values)).T))
    hair = column["hair_colour"].round().long()
    return torch.stack([column["mouth_curvature"] > 0, column["eyeglasses"] > 0.5,
                        *(hair == k for k in range(len(HAIR_COLOURS))),
                        column["eye_openness"] < NARROW_EYES, column["skin_tone"] < PALE_SKIN], dim=1)


LEVEL_VALUES = read_only(*(np.arange(float(CATEGORIES[name])) if name in CATEGORIES else bin_centres(*RANGES[name])
                           for name in FACTOR_NAMES))


@dataclass(frozen=True, eq=False)
class FacesFactors(FactorGrid):
    """The discretized factors of `faces`: 20 bins per continuous factor, drawn at the bin's centre."""

    names: tuple[str, ...] = FACTOR_NAMES
    level_values: tuple[np.ndarray, ...] = LEVEL_VALUES

    def images_for(self, factors: np.ndarray | Tensor) -> Tensor:
        """uint8 (n, 3, 64, 64) for int (n, K) levels."""
        levels = self.check_levels(factors)
        return render(np.stack([self.level_values[k][levels[:, k]] for k in range(len(self.names))], axis=1))


def faces_size(spec: str) -> int | None:
    """The N of 'faces:N' (None for 'faces', all 60,000 training faces)."""
    if spec == "faces":
        return None
    count = spec.removeprefix("faces:")
    if not count.isdigit() or not 1 <= int(count) <= MAX_TRAIN:
        raise DataError(f"{spec!r}: faces:N takes a number of training faces from 1 to {MAX_TRAIN:,}, e.g. "
                        f"faces:2000 (faces alone: {TRAIN_IMAGES:,}; the {TEST_IMAGES:,} test faces never change)")
    return int(count)


def check_face_options(spec: str, image_size: int | None, channels: int | None) -> None:
    """Faces are 64x64 RGB and load as they are (their factors render at that size): anything else is a DataError."""
    if image_size not in (None, SIZE) or channels not in (None, 3):
        raise DataError(f"{spec.split(':')[0]} images are {SIZE}x{SIZE} RGB and load as they are; leave out "
                        f"--image-size and --channels (or give {SIZE} and 3)")


def make_faces(n_train: int | None = None, n_test: int = TEST_IMAGES) -> Dataset:
    """The faces Dataset: the first n_train (default 60,000) training faces and the first n_test test faces,
    labels = Smiling, attributes, factor values and the discretized factors kept."""
    n = TRAIN_IMAGES if n_train is None else n_train
    train_values, test_values = sample_values(n, TRAIN_SEED), sample_values(n_test, TEST_SEED)
    train_attributes, test_attributes = attributes_of(train_values), attributes_of(test_values)
    name = "faces" if n_train is None else f"faces:{n}"
    return Dataset(name=name, train_x=render(train_values), train_y=train_attributes[:, 0].long(),
                   test_x=render(test_values), test_y=test_attributes[:, 0].long(), classes=CLASSES,
                   factor_names=FACTOR_NAMES, train_factors=torch.from_numpy(train_values),
                   test_factors=torch.from_numpy(test_values), factors=FacesFactors(),
                   attribute_names=ATTRIBUTE_NAMES, train_attributes=train_attributes,
                   test_attributes=test_attributes,
                   source=f"procedural cartoon faces: {n:,} train (seed {TRAIN_SEED}) + {n_test:,} test (seed "
                          f"{TEST_SEED}) images")


def example_figure(columns: int = 8) -> Tensor:
    """uint8 (3, H, W): one row per factor, each a test face with only that factor swept left to right, labelled."""
    base = sample_values(len(FACTOR_NAMES), TEST_SEED)
    rows, labels = [], []
    for k, name in enumerate(FACTOR_NAMES):
        values = np.repeat(base[k:k + 1], columns, axis=0)
        if name in CATEGORIES:
            values[:, k] = np.arange(columns) % CATEGORIES[name]
            kinds = HAIR_COLOURS if name == "hair_colour" else ("off", "on")
            labels.append(f"{name}: {', '.join(kinds)}")
        else:
            values[:, k] = np.linspace(*RANGES[name], columns)
            labels.append(f"{name} {RANGES[name][0]:g} to {RANGES[name][1]:g}")
        rows.append(render(values))
    grid = labelled_grid(torch.cat(rows).float() / 255, columns, GridLabels(
        rows=labels, title="faces: each row one test face with one factor swept left to right"), zoom=2)
    return grid.image


def write_example_figure(path: str | os.PathLike = "docs/images/faces/faces-examples.png") -> Path:
    """Write example_figure() as a PNG (its folder made if need be); returns the path."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_png(example_figure(), path)
