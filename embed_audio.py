"""Stage 3: embed every window of the song (every frame of a video) with the trained encoder; plot the path in 3-D."""
import settings
from dae import cli, dataset, embedding, layout, plotting, provenance, store

PLOT = True             # also save outputs/<song>/<run>/trajectory.png and trajectory.html
SECTION_SECONDS = 30.0  # also save trajectory_sections.png, the path this many seconds at a time; 0 = not
SECTIONS = ""           # or the sections' start times (s), e.g. "16,32": 0-16, 16-32, 32-end; overrides SECTION_SECONDS


def main():
    cfg = cli.configure(layout.select_run(globals(), settings), limits={"SECTION_SECONDS": (0.0, None)})
    if SECTIONS.strip():
        plotting.section_bounds(float("inf"), SECTION_SECONDS, SECTIONS)   # checked at the door; again at the end
    paths = layout.run_paths(cfg)
    with store.writing(paths, "embed_audio.py"):
        if PLOT:
            store.check_folder(paths.output_dir)         # whatever is in its way is said before the work
        Z, start, center, end, chain = embedding.embed_song(paths)
        embedding.save(paths, Z, start, center, end, chain)
        print(f"embedded {len(Z)} windows of {paths.song} into {Z.shape[1]}-D: saved {paths.embedding}")
        if PLOT:
            written = draw(paths, cfg)
            print("saved " + ", ".join(str(p) if i == 0 else p.name for i, p in enumerate(written)))


def draw(paths, cfg):
    """Draw the pictures of the run's saved embedding (trajectory.png, trajectory.html and, with
    sections, trajectory_sections.png) and publish them with their sidecars as one unit
    (`store.group_commit`): a crash leaves the previous embedding's set or this one's, and
    a sections picture of a previous embedding does not stay beside them. Returns the files."""
    emb = embedding.load(paths)
    meta, Z, center, end = emb["meta"], emb["Z"], emb["t_center"], emb["t_end"]
    what = f"video, {paths.frames_tag.split('_')[0]} frames" if paths.frames is not None \
        else f"{cfg['WINDOW_SECONDS']:g} s window"
    title = f"{paths.song} ({meta['architecture']}, {what})"
    edges = None
    if SECTIONS.strip() or (SECTION_SECONDS > 0 and end[-1] > SECTION_SECONDS):
        edges = plotting.section_bounds(end[-1], SECTION_SECONDS, SECTIONS)
    spec = dataset.arrays(emb["chain"]["spectrogram"]) if "spectrogram" in emb["chain"] else None
    written = [paths.trajectory_png, paths.trajectory_html]
    with store.group_commit() as group:
        plotting.trajectory_png(group.stage(paths.trajectory_png), Z, center, title, spec=spec, sections=edges)
        files = plotting.trajectory_html(group.stage(paths.trajectory_html), Z, center, title,
                                         plotting.library_path(paths))
        if edges is not None:
            plotting.trajectory_sections_png(group.stage(paths.trajectory_sections_png), Z, center, title, edges)
            written.append(paths.trajectory_sections_png)
        else:
            group.drop(paths.trajectory_sections_png)
        for path in written:
            provenance.write_sidecar(group.stage(path), "trajectory plot", cfg, inputs={"embedding": meta},
                                     run=paths.run, **({"files": files} if path == paths.trajectory_html else {}))
    return written


if __name__ == "__main__":
    cli.run(main)
