"""Stage 3: embed every window of the song (every frame of a video) with the trained encoder; plot the path in 3-D."""
import settings
from dae import artifacts, cli, embedding, plotting

PLOT = True  # also save outputs/<song>/<run>/trajectory.png and trajectory.html


def main():
    cfg = cli.configure(artifacts.select_run(globals(), settings))
    paths = artifacts.run_paths(cfg)
    with artifacts.writing(paths, "embed_audio.py"):
        Z, start, center, end, chain = embedding.embed_song(paths)
        embedding.save(paths, Z, start, center, end, chain)
        print(f"embedded {len(Z)} windows of {paths.song} into {Z.shape[1]}-D: saved {paths.embedding}")
        if PLOT:
            emb = embedding.load(paths)["meta"]
            what = f"video, {paths.frames_tag.split('_')[0]} frames" if paths.frames is not None \
                else f"{cfg['WINDOW_SECONDS']:g} s window"
            title = f"{paths.song} ({emb['architecture']}, {what})"
            plotting.trajectory_png(paths.trajectory_png, Z, center, title)
            plotting.trajectory_html(paths.trajectory_html, Z, center, title)
            for path in (paths.trajectory_png, paths.trajectory_html):
                artifacts.write_sidecar(path, "trajectory plot", cfg, inputs={"embedding": emb}, run=paths.run)
            print(f"saved {paths.trajectory_png} and {paths.trajectory_html.name}")


if __name__ == "__main__":
    cli.run(main)
