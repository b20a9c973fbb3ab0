"""A local colour model between a source frame and its stylized version (guided-filter style).

Around every pixel the style is modelled as an affine map of the source colour, stylized = A(x) source + b(x),
A a 3x3 matrix fitted by least squares over a window (He et al.'s guided filter, with a colour guide). The
coefficients vary slowly, so they are fitted at a reduced size and applied to the full-size frame, whose
detail they keep (the "fast guided filter"). What the model cannot express (ink lines, painted texture the
source does not have) is the keyframe's *residual*: stylized - model(source).

Where the residual is large the model does not explain the keyframe there (ink, hard posterized edges), and
model(frame t) + residual goes wrong as soon as the flow is a pixel off: a thin dark line sits on a source edge,
and frame t's lighter side of the edge under it turned the carried ink grey (mid-gap ink frames, 0.52 sharpness).
There the keyframe's own colour is carried as it is (`literal`: weight 0 where the model explains the pixel,
1 where it clearly does not): stylized(t) = warped stylized + A (source(t) - warped source) is only trusted
where A explains the pixel.

Propagation carries the coefficients (smooth: a small warp) and the residual (sharp) to frame t along the
flow and applies the coefficients to frame t's own pixels: a pixel-wise style then comes back from frame t
itself, at full sharpness, even where the flow is a little off. Where the flow is unsure (uncovered, too fast,
after a cut), a model indexed by colour instead of place takes over (`fit_by_colour`: an affine fit per colour
bin, drawn toward the global fit, one A, b for the whole keyframe, where a bin holds few pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from backend.pipelines import ink_model
from backend.pipelines.ink_model import InkModel

FIT_WIDTH = 480   # coefficients are fitted at most this wide
RADIUS = 4        # window radius (pixels at the fit size)
EPS = 1e-4        # regularization, in (unit colour)^2: flat windows fall back to their mean colour
# |residual| (largest channel, unit colour) over which a pixel goes from the model's (0) to carried as it is (1).
# The toon style's ink has |residual| 0.10-0.44 (median 0.23-0.34); a pixel-wise style's almost all under 0.05.
LITERAL_LOW, LITERAL_HIGH = 0.08, 0.2
PAIRS = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
BINS = 8          # colour bins per channel of the by-colour model (fit_by_colour)
BIN_PRIOR = 5.0   # pixels' worth of the global fit in every bin
BIN_EPS = 1e-4    # (unit colour)^2: a bin's A is drawn toward the global fit's


@dataclass
class KeyModel:
    """A keyframe's colour model: `coeffs` (12 x h x w float32 planes at the fit size: for each output channel
    c, A[c, 0..2] then b[c]; planar, so each plane is contiguous for OpenCV and numpy), `residual`
    (H x W x 3 float32, full size), `glob` (12 float32, the global fit), `literal` (H x W x 4 float32: the
    stylized colour in unit RGB and, last, the weight with which it is carried as it is; one array, so one
    warp carries both)."""

    coeffs: np.ndarray
    residual: np.ndarray
    glob: np.ndarray
    literal: np.ndarray
    ink: InkModel | None = None          # where the style draws ink on a source frame (ink_model)
    ink_amount: np.ndarray | None = None  # H x W float32: how much of each keyframe pixel is ink, 0..1
    ink_colour: np.ndarray | None = None  # 3 x h x w float32 at the fit size: the ink's local colour, unit RGB
    # BINS^3 x 12 float32: A, b per source colour (fit_by_colour); made from `by_colour_sums` (BINS^3 x 25), which a
    # gap's two keyframes pool (propagate_guided.pooled_by_colour)
    by_colour: np.ndarray | None = None
    by_colour_sums: np.ndarray | None = None
    # A style whose ink the edges explain only loosely (agreement under ink_model.AGREEMENT: Freestyle silhouettes
    # over a textured render) keeps its ink carried (literal), and this model of it, with `ink_colour`, for where
    # no flow vouches for the carried ink.
    loose_ink: InkModel | None = None


def unit(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) * np.float32(1.0 / 255.0)


def fit_size(shape, width: int = FIT_WIDTH) -> tuple[int, int]:
    height, full = shape[:2]
    width = min(full, width)
    return width, max(8, round(height * width / full))


def fit_coefficients(source: np.ndarray, stylized: np.ndarray, radius: int = RADIUS, eps: float = EPS,
                     weight: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel A, b with stylized ~ A source + b over (2 radius + 1)^2 windows; both float32 RGB in [0, 1],
    one size. Returns 12 x h x w float32 planes (see KeyModel). `weight` (h x w, 0..1) weighs each pixel in
    the fit (0: ignored, as ink is: it would drag the colour beside every line darker)."""
    box = (2 * radius + 1, 2 * radius + 1)

    def plain(x):
        return cv2.boxFilter(x, -1, box, borderType=cv2.BORDER_REFLECT)

    if weight is None:
        mean = plain
    else:
        total = plain(weight) + np.float32(1e-3)

        def mean(x):
            return plain(x * weight) / total

    s = [np.ascontiguousarray(source[..., i]) for i in range(3)]
    y = [np.ascontiguousarray(stylized[..., i]) for i in range(3)]
    ms, my = [mean(c) for c in s], [mean(c) for c in y]
    h, w = s[0].shape
    sigma = np.empty((h, w, 3, 3), np.float32)
    for i, j in PAIRS:
        sigma[..., i, j] = sigma[..., j, i] = mean(s[i] * s[j]) - ms[i] * ms[j]
    sigma += np.eye(3, dtype=np.float32) * np.float32(eps)
    cross = np.empty((h, w, 3, 3), np.float32)  # cross[..., i, c] = cov(source_i, stylized_c)
    for i in range(3):
        for c in range(3):
            cross[..., i, c] = mean(s[i] * y[c]) - ms[i] * my[c]
    solved = solve_symmetric(sigma, cross)  # solved[..., i, c] = A[c, i]
    coeffs = np.empty((12, h, w), np.float32)
    for c in range(3):
        a = solved[..., :, c]
        for i in range(3):
            coeffs[4 * c + i] = a[..., i]
        coeffs[4 * c + 3] = my[c] - (a[..., 0] * ms[0] + a[..., 1] * ms[1] + a[..., 2] * ms[2])
    # The guided filter's second average: each pixel takes the mean of the models of the windows holding it.
    return np.stack([plain(plane) for plane in coeffs])


def solve_symmetric(sigma: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """X with sigma X = rhs for every pixel's symmetric 3x3 `sigma` (h x w x 3 x 3, and rhs h x w x 3 x k), float32.

    By the adjugate, in float64 as np.linalg.solve computes too (float32 cofactors lose digits on nearly flat
    windows, where sigma is close to eps times the identity): the same float32 result, in 11 ms at 480x270
    against 38 ms for its batched LU.
    """
    s = sigma.astype(np.float64)
    a, b, c, d, e, f = s[..., 0, 0], s[..., 0, 1], s[..., 0, 2], s[..., 1, 1], s[..., 1, 2], s[..., 2, 2]
    adj = [[d * f - e * e, c * e - b * f, b * e - c * d],   # the adjugate of [[a b c] [b d e] [c e f]]: symmetric
           [None, a * f - c * c, b * c - a * e],
           [None, None, a * d - b * b]]
    for i in range(3):
        for j in range(i):
            adj[i][j] = adj[j][i]
    inverse_det = 1.0 / (a * adj[0][0] + b * adj[0][1] + c * adj[0][2])
    out = np.empty(rhs.shape, np.float32)
    for k in range(rhs.shape[-1]):
        column = [rhs[..., i, k].astype(np.float64) for i in range(3)]
        for i in range(3):
            out[..., i, k] = (adj[i][0] * column[0] + adj[i][1] * column[1] + adj[i][2] * column[2]) * inverse_det
    return out


def fit_global(source: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """One affine map for the whole image (least squares, lightly regularized): 12 floats."""
    s = source.reshape(-1, 3).astype(np.float64)
    y = stylized.reshape(-1, 3).astype(np.float64)
    design = np.hstack([s, np.ones((len(s), 1))])
    gram = design.T @ design + 1e-6 * len(s) * np.eye(4)
    solution = np.linalg.solve(gram, design.T @ y)  # 4 x 3: column c is [A[c, :], b[c]]
    return solution.T.reshape(12).astype(np.float32)


def fit_by_colour(source: np.ndarray, stylized: np.ndarray, glob: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A, b per source colour instead of per place: the keyframe's pixels binned by colour (BINS per channel)
    and an affine fit in each bin, drawn toward the global fit `glob` where a bin holds few pixels. For pixels
    no flow carries a local model to (a figure disoccluded or moving too fast), a model that knows what the
    style does to *this colour* beats one fitted on the whole frame. Both float32 RGB in [0, 1], one size;
    `weight` (0..1 a pixel) leaves out what the model is not for (ink). Returns BINS^3 x 12 float32 (rows in
    the layout of KeyModel's planes)."""
    return solve_by_colour(by_colour_sums(source, stylized, weight), glob)


def by_colour_sums(source: np.ndarray, stylized: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """What `fit_by_colour` fits from, per colour bin: the (weighted) pixel count, sums of source and stylized colour,
    and of their products (BINS^3 x 28 float64: count, 3, 3, 9 source x source, 9 source x stylized, 3 stylized
    squared). Sums add: two
    keyframes' together fit the colours either showed (`solve_by_colour`)."""
    s = source.reshape(-1, 3)
    y = stylized.reshape(-1, 3)
    w = weight.reshape(-1).astype(np.float64)
    index = colour_bins(source).reshape(-1)

    def total(values):
        return np.bincount(index, weights=values * w, minlength=BINS**3)

    out = np.empty((BINS**3, 28))
    out[:, 0] = np.bincount(index, weights=w, minlength=BINS**3)
    for i in range(3):
        out[:, 1 + i], out[:, 4 + i], out[:, 25 + i] = total(s[:, i]), total(y[:, i]), total(y[:, i] * y[:, i])
    ss = out[:, 7:16].reshape(-1, 3, 3)
    for i, j in PAIRS:
        ss[:, i, j] = ss[:, j, i] = total(s[:, i] * s[:, j])
    sy = out[:, 16:25].reshape(-1, 3, 3)
    for i in range(3):
        for c in range(3):
            sy[:, i, c] = total(s[:, i] * y[:, c])
    return out


def solve_by_colour(sums: np.ndarray, glob: np.ndarray) -> np.ndarray:
    """The by-colour model (see `fit_by_colour`) from `by_colour_sums` and a global fit: BINS^3 x 12 float32."""
    count, ms, my = sums[:, 0], sums[:, 1:4], sums[:, 4:7]
    ss, sy = sums[:, 7:16].reshape(-1, 3, 3), sums[:, 16:25].reshape(-1, 3, 3)
    # A prior of BIN_PRIOR pixels at the bin's mean colour that follow the global fit: an empty bin is the
    # global fit, a full one its own.
    n = count + BIN_PRIOR
    centre = np.where(count[:, None] > 1e-3, ms / np.maximum(count, 1e-3)[:, None], _bin_centres())
    g = glob.reshape(3, 4).astype(np.float64)
    prior_y = centre @ g[:, :3].T + g[:, 3]
    ms, my = (ms + BIN_PRIOR * centre) / n[:, None], (my + BIN_PRIOR * prior_y) / n[:, None]
    sigma = (ss + BIN_PRIOR * centre[:, :, None] * centre[:, None, :]) / n[:, None, None] - ms[:, :, None] * ms[:, None, :]
    cross = (sy + BIN_PRIOR * centre[:, :, None] * prior_y[:, None, :]) / n[:, None, None] - ms[:, :, None] * my[:, None, :]
    # Within a bin the colour barely varies: the regularization pulls A toward the global fit's, not toward 0.
    reg = BIN_EPS * np.eye(3)
    a = np.linalg.solve(sigma + reg, cross + reg @ g[:, :3].T)  # a[:, i, c] = A[c, i]
    out = np.empty((BINS**3, 12))
    for c in range(3):
        out[:, 4 * c:4 * c + 3] = a[:, :, c]
        out[:, 4 * c + 3] = my[:, c] - np.einsum("ni,ni->n", a[:, :, c], ms)
    return out.astype(np.float32)


def by_colour_error(sums: np.ndarray, table: np.ndarray, prior: float) -> np.ndarray:
    """How far each bin's fit (`table`, from solve_by_colour) is from the keyframe pixels it was fitted on: their mean
    squared error in unit colour, per channel averaged, drawn toward `prior` by BIN_PRIOR pixels (BINS^3 float32)."""
    count, ms, my, yy = sums[:, 0], sums[:, 1:4], sums[:, 4:7], sums[:, 25:28]
    ss, sy = sums[:, 7:16].reshape(-1, 3, 3), sums[:, 16:25].reshape(-1, 3, 3)
    k = table.astype(np.float64).reshape(-1, 3, 4)
    a, b = k[:, :, :3], k[:, :, 3]  # a[n, c, i] = A[c, i]
    # sum over pixels of (y_c - a_c . s - b_c)^2, expanded into the sums
    squared = (yy - 2 * np.einsum("nci,nic->nc", a, sy) - 2 * b * my + np.einsum("nci,nij,ncj->nc", a, ss, a)
               + 2 * b * np.einsum("nci,ni->nc", a, ms) + b * b * count[:, None])
    return ((np.maximum(squared, 0.0).sum(1) / 3 + BIN_PRIOR * prior) / (count + BIN_PRIOR)).astype(np.float32)


def colour_bins(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's colour bin (intp array of the image's height and width); float [0, 1] or uint8 RGB."""
    if rgb.dtype == np.uint8:
        q = rgb >> np.uint8(9 - BINS.bit_length())  # the top bits (BINS is a power of two)
    else:
        q = np.clip((rgb * np.float32(BINS)).astype(np.intp), 0, BINS - 1)
    q = q.astype(np.intp)
    return (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]


def _bin_centres() -> np.ndarray:
    q = (np.arange(BINS) + 0.5) / BINS
    r, g, b = np.meshgrid(q, q, q, indexing="ij")
    return np.stack([r.ravel(), g.ravel(), b.ravel()], 1)


def coefficients_by_colour(table: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """The by-colour model (fit_by_colour) looked up for each pixel of `rgb`: 12 planes of its size."""
    bins = colour_bins(rgb)
    return np.stack([np.take(plane, bins) for plane in np.ascontiguousarray(table.T)])


def upsample(coeffs: np.ndarray, size: tuple[int, int]) -> np.ndarray | list[np.ndarray]:
    """Coefficient planes brought to `size` (w, h), linearly: a list of planes (stacking 12 full-size planes
    would copy them all once more)."""
    if coeffs.shape[1:] == (size[1], size[0]):
        return coeffs
    return [cv2.resize(plane, size, interpolation=cv2.INTER_LINEAR) for plane in coeffs]


def apply(coeffs: np.ndarray, image: np.ndarray) -> np.ndarray:
    """A, b (12 planes at any size, upsampled linearly to the image; or 12 floats) applied to float32 RGB."""
    height, width = image.shape[:2]
    if coeffs.ndim == 1:
        return cv2.transform(image, coeffs.reshape(3, 4))
    channels = cv2.split(image)
    # One output channel's four planes at full size at a time, not all twelve (a 4K frame's would be 400 MB).
    return cv2.merge([_apply_channel(upsample(coeffs[4 * c:4 * c + 4], (width, height)), channels) for c in range(3)])


def _apply_channel(k, channels) -> np.ndarray:
    """One output channel: k[0] r + k[1] g + k[2] b + k[3]."""
    r, g, b = channels
    plane = k[0] * r
    plane += k[1] * g
    plane += k[2] * b
    plane += k[3]
    return plane


def key_model(source: np.ndarray, stylized: np.ndarray, ink: bool = False, carried: bool = False) -> KeyModel:
    """The colour model of a keyframe (uint8 source and stylized RGB of one size). With `ink`, dark lines that
    follow the source's edges (ink_model) are found first, left out of the colour fit (they would drag the
    colour beside every line darker), of the residual and of the literal carry, and modelled apart, to be
    redrawn on each frame's own edges; with `carried` too, they are kept in the literal carry as lines that follow
    the edges only loosely are (`loose_ink`), however closely these follow them."""
    src, sty = unit(source), unit(stylized)
    size = fit_size(source.shape)
    small_src, small_sty = _at(src, size), _at(sty, size)
    glob = fit_global(small_src, small_sty)
    if ink:
        # The ink is found by a quick fit at half the fit size: where the colour model leaves dark pixels.
        quick = fit_size(source.shape, FIT_WIDTH // 2)
        residual = sty - apply(fit_coefficients(_at(src, quick), _at(sty, quick)), src)
        amount = ink_model.ink_amount(residual, literal_weight(residual))
        # A style without ink (a pixel-wise one) has nothing to fit: its source's edge maps are not made.
        found = ink_model.fit(ink_model.edge_maps(source), amount) if amount.mean() >= ink_model.MIN_SHARE else None
        if found is not None and found.agreement >= ink_model.AGREEMENT and not carried:
            kept = 1.0 - amount
            coeffs = fit_coefficients(small_src, small_sty, weight=_at(kept, size))
            residual = sty - apply(coeffs, src)
            literal = np.dstack([sty, literal_weight(residual) * kept])
            sums = _by_colour(small_src, small_sty, literal, size, kept)
            return KeyModel(coeffs, residual * kept[..., None], glob, literal, found, amount,
                            ink_colour(sty, amount, size), solve_by_colour(sums, glob), by_colour_sums=sums)
        # No ink, or ink the edges do not explain: carried as it is, as any residual.
    coeffs = fit_coefficients(small_src, small_sty)
    residual = sty - apply(coeffs, src)
    literal = np.dstack([sty, literal_weight(residual)])
    sums = _by_colour(small_src, small_sty, literal, size)
    model = KeyModel(coeffs, residual, glob, literal, by_colour=solve_by_colour(sums, glob), by_colour_sums=sums)
    if ink and found is not None:
        model.loose_ink, model.ink_colour, model.ink_amount = found, ink_colour(sty, amount, size), amount
    return model


def _by_colour(small_src, small_sty, literal, size, kept=None) -> np.ndarray:
    """The by-colour model's sums (by_colour_sums) at the fit size, left out where the colour is not the model's
    (literal, ink)."""
    # Only pixels the local model explains outright: a half-explained one (the soft edge of an ink line) drags
    # its colour's bin toward the ink.
    weight = (literal[..., 3] < 0.01).astype(np.float32)
    if kept is not None:
        weight *= kept
    return by_colour_sums(small_src, small_sty, _at(np.ascontiguousarray(weight), size))


def _at(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return image if image.shape[1::-1] == size else cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def ink_colour(stylized: np.ndarray, amount: np.ndarray, size: tuple[int, int], radius: int = 8) -> np.ndarray:
    """The ink's local colour (3 planes at `size`, unit RGB): the ink-weighted mean over (2 radius + 1)^2 windows
    at that size, the keyframe's mean ink colour where no ink is near."""
    weight = cv2.resize(amount, size, interpolation=cv2.INTER_AREA)
    colour = cv2.resize(stylized * amount[..., None], size, interpolation=cv2.INTER_AREA)
    total = float(amount.sum())
    mean = (stylized * amount[..., None]).reshape(-1, 3).sum(axis=0) / total if total > 0 else np.zeros(3)
    box = (2 * radius + 1, 2 * radius + 1)
    weight = cv2.boxFilter(weight, -1, box, normalize=False)
    colour = cv2.boxFilter(colour, -1, box, normalize=False)
    prior = np.float32(0.5)  # a pixel's worth of the mean: windows without ink take it
    out = (colour + prior * mean.astype(np.float32)) / (weight + prior)[..., None]
    return np.ascontiguousarray(out.transpose(2, 0, 1)).astype(np.float32)


def literal_weight(residual: np.ndarray) -> np.ndarray:
    """0 where the model explains the keyframe, 1 where it clearly does not (smoothstep on |residual|)."""
    x = np.abs(residual)
    x = np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])  # x.max(axis=2), in 1/20 of the time
    x = np.clip((x - LITERAL_LOW) * np.float32(1.0 / (LITERAL_HIGH - LITERAL_LOW)), 0.0, 1.0)
    return (x * x * (3.0 - 2.0 * x)).astype(np.float32)


def warp_coefficients(coeffs: np.ndarray, coords) -> np.ndarray:
    """Coefficients carried along a flow (coords from flow.sample_map at the coefficients' size). The planes go
    through remap four (or three) at a time, as the channels of one image: the same values, in 2/3 of the time.
    (Two-channel images take another path in OpenCV, with other roundings: a pair goes plane by plane.) Each group
    is split straight into its planes of the result (no stacking copy afterwards)."""
    out = np.empty((len(coeffs),) + coords[0].shape, np.float32)
    for start in range(0, len(coeffs), 4):
        group = list(coeffs[start:start + 4])
        if len(group) < 3:
            for i, plane in enumerate(group):
                out[start + i] = _remap(plane, coords)
        else:
            planes = list(out[start:start + len(group)])
            for plane, written in zip(planes, cv2.split(_remap(cv2.merge(group), coords), planes)):
                if written is not plane:  # OpenCV made its own array after all
                    plane[...] = written
    return out


def _remap(image: np.ndarray, coords) -> np.ndarray:
    return cv2.remap(image, coords[0], coords[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
