"""Stage 4: an MP4 of a point moving along the embedded path, with the song's own audio in sync.

The point shown at time t is the one whose window is centred on t; the whole
path is drawn faint, the last TAIL points highlighted, the camera turns slowly,
and a spectrogram panel with a cursor shows what is playing.
"""
from dae import artifacts, cli, dataset, plotting, video
from dae.embedding import load as load_embedding
from settings import (SONG, WINDOW_SECONDS, LATENT_DIM, ALPHA, BETA, GAMMA, DELTA,  # shared settings
                      HISTORY, SEED, DATA_DIR, OUTPUT_DIR)

FPS = 30                  # frames per second (positions are interpolated between the 43 points/s)
WIDTH, HEIGHT = 1280, 720 # pixels
TAIL = 12                 # points highlighted behind the current one
DEGREES_PER_SECOND = 6.0  # camera rotation speed
SPECTROGRAM = True        # show the spectrogram with a cursor under the 3-D view
WORKERS = 0               # processes drawing frames; 0 = one per CPU core
PROGRESS = True           # show a progress bar


def main():
    cfg = cli.configure(globals())
    paths = artifacts.run_paths(cfg)
    emb = load_embedding(paths)
    F, T, S, spec = dataset.load(paths)
    P, _, note = plotting.project3(emb["Z"])
    title = f"{paths.song} · {emb['meta']['architecture']} · {WINDOW_SECONDS:g} s window" + (f" · PCA" if note else "")
    kwargs = dict(P=P, t_center=emb["t_center"], spec=(F, T, S, spec["duration_s"]) if SPECTROGRAM else None,
                  width=WIDTH, height=HEIGHT, tail=TAIL, degrees_per_second=DEGREES_PER_SECOND, title=title)
    n = video.render(paths.video, spec["source"], kwargs, spec["duration_s"], FPS, WORKERS or None, PROGRESS)
    artifacts.write_sidecar(paths.video, "video", cfg, run=paths.run, frames=n, fps=FPS,
                            duration_s=spec["duration_s"], audio=spec["source"],
                            sync="the point shown at time t is the path at the window centred on t")
    print(f"saved {paths.video} ({n} frames at {FPS} fps, {spec['duration_s']:.2f} s with audio)")


if __name__ == "__main__":
    cli.run(main)
