"""Stage 3: embed every window of the song (every frame of a video) with the trained encoder; plot the path in 3-D."""
import settings  # the settings every stage shares: here they select the run
from dae import cli, config, stages

PLOT = True             # also save outputs/<song>/<run>/trajectory.png and trajectory.html
FIND_SECTIONS = True    # find the song's sections from the music (for trajectory_sections.png and trajectory.png)
SECTION_SECONDS = 30.0  # with FIND_SECTIONS false, sections of this many seconds each; 0 = no sections
SECTIONS = ""           # or the sections' start times (s), e.g. "16,32": 0-16, 16-32, 32-end; overrides both


def main():
    cfg = cli.parse(config.Embedding, settings, globals())
    stages.embed_audio(cfg)


if __name__ == "__main__":
    cli.run(main)
