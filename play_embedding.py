"""Stage 4: an MP4 of a point moving along the embedded path, with the song's own audio in sync,
and a player page that does the same live in the browser (no rendering).

The point shown at time t is the one whose window is centred on t; the whole
path is drawn faint (thin, coloured by time), the last TAIL_SECONDS of it
highlighted, the camera turns slowly, and a spectrogram panel with a cursor
shows what is playing. The player page
(outputs/<song>/<run>/player.html + player.m4a, with one outputs/plotly.min.js)
plays the song and moves the point by the same rule, with free rotation.
A video run (--source video) shows, in both, the video's own frames beside the
path instead of the spectrogram (at t, the source frame with the largest time
<= t) and plays its own sound track when it has one (the page: a silent track
keeps time when it has none).
"""
import settings  # the settings every stage shares: here they select the run
from dae import cli, config, stages

FPS = 30                  # frames per second (positions are interpolated between the 43 points/s)
WIDTH, HEIGHT = 1280, 720 # pixels
TAIL_SECONDS = 1.0        # seconds of path highlighted behind the current point (video and player page)
DEGREES_PER_SECOND = 6.0  # camera rotation speed
SPECTROGRAM = True        # show the spectrogram with a cursor under the 3-D view
WORKERS = 0               # processes drawing frames; 0 = one per CPU core
PROGRESS = True           # show a progress bar
FORMAT = "both"           # "mp4" (the video), "html" (the player page, no rendering) or "both"
AUDIO_KBPS = 128          # the player page's audio: AAC in player.m4a at this bitrate (kbit/s)


def main():
    cfg = cli.parse(config.Player, settings, globals())
    stages.play_embedding(cfg)


if __name__ == "__main__":
    cli.run(main)
