"""Pictures: the spectrogram, and the trajectory in 3-D (PNG and interactive HTML)."""
import numpy as np

from dae import artifacts


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def spectrogram_png(path, F, T, S, title):
    """Save the spectrogram (F (n_freq,) Hz, T (n_time,) s, S (n_freq, n_time)) in dB."""
    plt = _pyplot()
    db = 20 * np.log10(np.maximum(S, 1e-12) / max(float(S.max()), 1e-12))
    fig, ax = plt.subplots(figsize=(12, 4), layout="constrained")
    mesh = ax.pcolormesh(T, F, db, shading="nearest", cmap="inferno", vmin=max(db.min(), -80), vmax=0)
    ax.set(xlabel="time (s)", ylabel="frequency (Hz)", title=title)
    fig.colorbar(mesh, ax=ax).set_label("magnitude (dB relative to the loudest bin)")
    with artifacts.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def project3(Z):
    """Points to show in 3-D: Z itself when d <= 3 (zero-padded), else the first
    three principal components. Returns (P (N, 3), axis labels, note)."""
    Z = np.asarray(Z, dtype=np.float64)
    d = Z.shape[1]
    if d <= 3:
        P = np.pad(Z, ((0, 0), (0, 3 - d)))
        return P, [f"z{i + 1}" for i in range(3)], ""
    C = Z - Z.mean(0)
    _, s, vt = np.linalg.svd(C, full_matrices=False)
    share = s[:3] ** 2 / np.sum(s ** 2)
    note = f"first 3 principal components of the {d}-D embedding ({100 * share.sum():.0f}% of variance)"
    return C @ vt[:3].T, [f"PC{i + 1} ({100 * share[i]:.0f}%)" for i in range(3)], note


def trajectory_png(path, Z, t, title):
    """Save the path in 3-D, coloured by time t (s)."""
    plt = _pyplot()
    from mpl_toolkits.mplot3d.art3d import Line3DCollection
    P, labels, note = project3(Z)
    fig = plt.figure(figsize=(8, 7), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    segments = np.stack([P[:-1], P[1:]], axis=1)
    lines = Line3DCollection(segments, cmap="viridis", linewidth=1.0)
    lines.set_array(t[:-1])
    ax.add_collection(lines)
    ax.scatter(*P[0], color="black", s=20, label="start")
    lo, hi = P.min(0), P.max(0)
    pad = 0.05 * (hi - lo).max() + 1e-12
    ax.set(xlim=(lo[0] - pad, hi[0] + pad), ylim=(lo[1] - pad, hi[1] + pad), zlim=(lo[2] - pad, hi[2] + pad))
    ax.set_box_aspect(hi - lo + 2 * pad)  # true proportions: a flat path looks flat
    ax.set(xlabel=labels[0], ylabel=labels[1], zlabel=labels[2])
    ax.set_title(title + (f"\n{note}" if note else ""), fontsize=10)
    fig.colorbar(lines, ax=ax, shrink=0.6).set_label("time in the song (s)")
    ax.legend(loc="upper left")
    with artifacts.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def trajectory_html(path, Z, t, title):
    """Save an interactive 3-D plot (plotly, works offline); hover shows the time."""
    import plotly.graph_objects as go
    P, labels, note = project3(Z)
    trace = go.Scatter3d(x=P[:, 0], y=P[:, 1], z=P[:, 2], mode="lines+markers",
                         marker=dict(size=2, color=t, colorscale="Viridis",
                                     colorbar=dict(title="time (s)")),
                         line=dict(color=t, colorscale="Viridis", width=3),
                         customdata=t, hovertemplate="t = %{customdata:.2f} s<extra></extra>")
    fig = go.Figure(trace)
    fig.update_layout(title=title + (f"<br><sub>{note}</sub>" if note else ""),
                      scene=dict(xaxis_title=labels[0], yaxis_title=labels[1], zaxis_title=labels[2]))
    with artifacts.atomic_path(path) as tmp:
        fig.write_html(tmp, include_plotlyjs=True, full_html=True)


def _project_with(Z, extra):
    """Project Z and extra points with the same 3-D view (PCA of Z when d > 3)."""
    P, labels, note = project3(np.vstack([Z, extra]))
    return P[:len(Z)], P[len(Z):], labels, note


def forecast_png(path, Z, forecast, title):
    """The embedding faint, the forecast in red, its initial condition marked."""
    plt = _pyplot()
    P, F, labels, note = _project_with(Z, forecast)
    fig = plt.figure(figsize=(8, 7), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    ax.plot(*P.T, color="0.6", lw=0.6, alpha=0.6, label="embedding")
    ax.plot(*F.T, color="crimson", lw=1.8, label=f"forecast ({len(F) - 1} steps)")
    ax.scatter(*F[0], color="black", s=40, depthshade=False, label="initial condition")
    ax.set(xlabel=labels[0], ylabel=labels[1], zlabel=labels[2])
    ax.set_title(title + (f"\n{note}" if note else ""), fontsize=9)
    ax.legend(loc="upper left")
    with artifacts.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def forecast_html(path, Z, forecast, title):
    import plotly.graph_objects as go
    P, F, labels, note = _project_with(Z, forecast)
    fig = go.Figure([
        go.Scatter3d(x=P[:, 0], y=P[:, 1], z=P[:, 2], mode="lines", name="embedding",
                     line=dict(color="lightgray", width=2)),
        go.Scatter3d(x=F[:, 0], y=F[:, 1], z=F[:, 2], mode="lines", name="forecast",
                     line=dict(color="crimson", width=5), customdata=np.arange(len(F)),
                     hovertemplate="step %{customdata}<extra></extra>"),
        go.Scatter3d(x=F[:1, 0], y=F[:1, 1], z=F[:1, 2], mode="markers", name="initial condition",
                     marker=dict(color="black", size=5))])
    fig.update_layout(title=title + (f"<br><sub>{note}</sub>" if note else ""),
                      scene=dict(xaxis_title=labels[0], yaxis_title=labels[1], zaxis_title=labels[2]))
    with artifacts.atomic_path(path) as tmp:
        fig.write_html(tmp, include_plotlyjs=True, full_html=True)
