"""Stage 3: embed every window of the song with the trained encoder; plot the path in 3-D."""
from dae import artifacts, cli, embedding, plotting
from settings import (SONG, WINDOW_SECONDS, LATENT_DIM, ALPHA, BETA, GAMMA, DELTA,  # shared settings
                      HISTORY, SEED, DATA_DIR, OUTPUT_DIR)

PLOT = True  # also save outputs/<song>/<run>/trajectory.png and trajectory.html


def main():
    cfg = cli.configure(globals())
    paths = artifacts.run_paths(cfg)
    Z, start, center, end, meta = embedding.embed_song(paths)
    embedding.save(paths, Z, start, center, end, meta)
    print(f"embedded {len(Z)} windows of {paths.song} into {Z.shape[1]}-D: saved {paths.embedding}")
    if PLOT:
        title = f"{paths.song} ({meta['architecture']}, {WINDOW_SECONDS:g} s window)"
        plotting.trajectory_png(paths.trajectory_png, Z, center, title)
        plotting.trajectory_html(paths.trajectory_html, Z, center, title)
        for path in (paths.trajectory_png, paths.trajectory_html):
            artifacts.write_sidecar(path, "trajectory plot", cfg, run=paths.run, embedding=str(paths.embedding))
        print(f"saved {paths.trajectory_png} and {paths.trajectory_html.name}")


if __name__ == "__main__":
    cli.run(main)
