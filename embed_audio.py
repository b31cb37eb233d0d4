"""Stage 3: embed every window of the song (every frame of a video) with the trained encoder; plot the path in 3-D."""
import settings  # the settings every stage shares: here they select the run
from dae import cli, config, stages

PLOT = True             # also save outputs/<song>/<run>/trajectory.png and trajectory.html
SECTION_SECONDS = 30.0  # also save trajectory_sections.png, the path this many seconds at a time; 0 = not
SECTIONS = ""           # or the sections' start times (s), e.g. "16,32": 0-16, 16-32, 32-end; overrides SECTION_SECONDS


def main():
    cfg = cli.parse(config.Embedding, settings, globals())
    stages.embed_audio(cfg)


if __name__ == "__main__":
    cli.run(main)
