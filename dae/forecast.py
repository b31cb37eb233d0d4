"""Forecasting in the embedding space: the KNN displacement field, rollouts,
divergence from the true path, and smoothness.

Z is always (N, d): the embedded path, one point per window position; the
library of a KNN field is the points Z[0 .. N-2] with their displacements
V[j] = Z[j+1] - Z[j].
"""
import numpy as np
from scipy.spatial import cKDTree

from dae.errors import UserError, refused


def _path(Z, least=2):
    """Z as a float (N, d) array with N >= least finite points, or a UserError naming what is wrong."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or len(Z) < least or Z.shape[1] < 1:
        raise UserError(f"a path needs at least {least} points in an (N, d) array, got shape {Z.shape}")
    if not np.all(np.isfinite(Z)):
        raise UserError(f"the path holds {int(np.sum(~np.isfinite(Z)))} NaN or infinite values; "
                        "retrain the model (`python train_model.py`) and embed again")
    return Z


def _count(name, value, least):
    """A whole number >= least (bools are not numbers here), else a UserError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise UserError(f"{name}={value!r} must be a whole number >= {least}")
    return int(value)


def displacements(Z):
    """V[j] = Z[j+1] - Z[j]: (N-1, d) for a path Z (N, d) of N >= 2 finite points."""
    return np.diff(_path(Z), axis=0)


class KNNField:
    """v̂(z): the inverse-distance weighted mean displacement of the K nearest
    embedded points.

    Z : (N, d) path. k : neighbours (5). exclusion : library indices j with
    |j - origin| <= exclusion are never used for a query made on behalf of
    `origin` (None: no exclusion). drop_nearest : the original's rule, drop the
    nearest neighbour at every query (and use no exclusion).
    Weights are 1/distance normalised to sum to 1; a query that coincides with
    library points uses those points only, equally weighted.
    """

    def __init__(self, Z, k=5, exclusion=None, drop_nearest=False):
        self.V = displacements(Z)
        self.points = np.asarray(Z, dtype=np.float64)[:-1]
        _count("K", k, 1)
        if not 1 <= k <= len(self.points):
            raise UserError(f"K={k} neighbours needs 1 <= K <= {len(self.points)} library points")
        if exclusion is not None and exclusion < 0:
            raise refused("exclusion_radius", f"={exclusion} must be >= 0")
        self.k, self.exclusion, self.drop_nearest = int(k), exclusion, bool(drop_nearest)
        if self.drop_nearest:
            self.exclusion = None
        spare = 1 if self.drop_nearest else (2 * self.exclusion + 1 if self.exclusion is not None else 0)
        self.n_query = min(self.k + spare, len(self.points))
        if self.exclusion is not None and len(self.points) - (2 * self.exclusion + 1) < self.k:
            raise UserError(f"too few points ({len(self.points)}) for K={k} outside an exclusion radius of "
                            f"{exclusion}; use a longer song or a smaller EXCLUSION_RADIUS")
        self.tree = cKDTree(self.points)

    def neighbours(self, q, origin=None):
        """Indices (M, k) and distances (M, k) of the neighbours used for queries q (M, d).

        origin : (M,) library index each query is made for (needed with exclusion).
        """
        q = np.atleast_2d(np.asarray(q, dtype=np.float64))
        dist, idx = self.tree.query(q, k=self.n_query)
        dist, idx = dist.reshape(len(q), -1), idx.reshape(len(q), -1)
        if self.drop_nearest:
            return idx[:, 1:self.k + 1], dist[:, 1:self.k + 1]
        if self.exclusion is None:
            return idx[:, :self.k], dist[:, :self.k]
        if origin is None:
            raise ValueError("origin is required when an exclusion radius is set")
        allowed = np.abs(idx - np.asarray(origin).reshape(-1, 1)) > self.exclusion
        order = np.argsort(~allowed, axis=1, kind="stable")[:, :self.k]   # first k allowed, in distance order
        return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)

    def __call__(self, q, origin=None):
        """Displacements v̂ (M, d) at queries q (M, d)."""
        idx, dist = self.neighbours(q, origin)
        zero = dist <= 1e-12
        w = np.where(zero.any(axis=1, keepdims=True), zero.astype(float), 1.0 / np.maximum(dist, 1e-300))
        w /= w.sum(axis=1, keepdims=True)
        return np.einsum("mk,mkd->md", w, self.V[idx])


def rollout(field, z0, steps, origin=None):
    """Euler rollout z_{k+1} = z_k + field(z_k): (steps + 1, d) from z0 (d,).

    steps : int >= 0. origin : library index the queries are made for (needed
    by a field with an exclusion radius).
    """
    steps = _count("N_STEPS", steps, 0)
    z0 = np.asarray(z0, dtype=np.float64)
    if z0.ndim != 1 or not np.all(np.isfinite(z0)):
        raise UserError(f"the initial condition must be one finite point (d,), got shape {z0.shape}")
    path = np.empty((steps + 1, len(z0)))
    path[0] = z0
    o = None if origin is None else np.array([origin])
    for k in range(steps):
        path[k + 1] = path[k] + field(path[k][None], o)[0]
    return path


def divergence(Z, field, origins, steps=30):
    """Distance to the true path after each step, for many initial conditions at once.

    Z : (N, d) true path; origins : (M,) start indices with origin + steps <= N - 1.
    Each step makes one batched neighbour query for all M forecasts.
    Returns delta (M, steps + 1): delta[m, i] = |ẑ_i - z_{origin_m + i}|, delta[:, 0] = 0.
    """
    Z = _path(Z)
    steps = _count("N_STEPS", steps, 1)
    origins = np.asarray(origins, dtype=int)
    if origins.size == 0 or origins.min() < 0 or origins.max() + steps > len(Z) - 1:
        raise UserError(f"initial conditions must lie in 0..{len(Z) - 1 - steps} to have {steps} true steps; "
                        "use a longer song or fewer steps")
    z = Z[origins].copy()
    delta = np.zeros((len(origins), steps + 1))
    for i in range(1, steps + 1):
        z = z + field(z, origins)
        delta[:, i] = np.linalg.norm(z - Z[origins + i], axis=1)
    return delta


def divergence_loop(Z, origins, steps=30, k=5, exclusion=None, drop_nearest=False):
    """The straightforward reference for `divergence`, written independently.

    One forecast at a time, one scikit-learn neighbour query per point per step
    (as the original script did), with the same rule as KNNField.
    """
    from sklearn.neighbors import NearestNeighbors
    Z = np.asarray(Z, dtype=np.float64)
    library, V = Z[:-1], np.diff(Z, axis=0)
    spare = 1 if drop_nearest else (2 * exclusion + 1 if exclusion is not None else 0)
    tree = NearestNeighbors(n_neighbors=min(k + spare, len(library)), algorithm="ball_tree").fit(library)
    delta = np.zeros((len(origins), steps + 1))
    for m, t0 in enumerate(origins):
        z = Z[t0].copy()
        for i in range(1, steps + 1):
            dist, idx = tree.kneighbors(z.reshape(1, -1))
            dist, idx = dist[0], idx[0]
            if drop_nearest:
                dist, idx = dist[1:k + 1], idx[1:k + 1]
            else:
                keep = [j for j in range(len(idx)) if exclusion is None or abs(idx[j] - t0) > exclusion][:k]
                dist, idx = dist[keep], idx[keep]
            if np.any(dist <= 1e-12):
                w = (dist <= 1e-12).astype(float)
            else:
                w = 1.0 / dist
            w = w / w.sum()
            z = z + (w[:, None] * V[idx]).sum(axis=0)
            delta[m, i] = np.linalg.norm(z - Z[t0 + i])
    return delta


def unit_scale(Z, lo=None, hi=None):
    """Scale each dimension to [0, 1] by its min and max (or the given lo, hi), as the original.

    Returns (scaled Z, lo, hi); lo and hi are (d,).
    """
    Z = _path(Z, least=1)
    lo = Z.min(axis=0) if lo is None else np.asarray(lo, dtype=np.float64)
    hi = Z.max(axis=0) if hi is None else np.asarray(hi, dtype=np.float64)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    return (Z - lo) / span, lo, hi


def growth_rate(delta, first=1, last=10):
    """Rosenstein-style slope of mean ln δ against step over steps first..last.

    delta : (M, steps + 1), distances (>= 0). first, last : steps to fit,
    0 <= first < last <= steps. Returns (slope per step, intercept).
    """
    delta = np.asarray(delta, dtype=np.float64)
    if delta.ndim != 2 or len(delta) < 1:
        raise UserError(f"delta must be (M, steps + 1) with M >= 1, got shape {delta.shape}")
    first, last = _count("first step", first, 0), _count("FIT_STEPS", last, 1)
    if not first < last < delta.shape[1]:
        raise UserError(f"a growth rate over steps {first}..{last} needs {first} < {last} <= {delta.shape[1] - 1} "
                        "(the last step forecast)")
    steps = np.arange(first, last + 1)
    mean_log = np.log(np.maximum(delta[:, first:last + 1], 1e-300)).mean(axis=0)
    slope, intercept = np.polyfit(steps, mean_log, 1)
    return float(slope), float(intercept)


def turning_angle(Z):
    """Mean angle (degrees) between consecutive displacement vectors: lower is smoother.

    Steps of zero length are skipped.
    """
    V = displacements(Z)
    n = np.linalg.norm(V, axis=1)
    V = V[n > 0] / n[n > 0, None]
    if len(V) < 2:
        raise UserError("the path has fewer than 3 distinct points; no turning angle to measure")
    cos = np.clip(np.sum(V[:-1] * V[1:], axis=1), -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)).mean())
