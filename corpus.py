"""The real corpus: Debian's packaged game soundtracks, as deterministic 30 s clips.

`make corpus` installs the packages with apt-get (never at run time) and then
runs this script, which writes data/corpus/manifest.csv (every music file of
every package: package, version, file, licence, duration, sha256) and
data/corpus/clips/ (16-bit mono WAV clips and clips.json, naming each clip's
source file, offset and sha256). The experiment then runs on the clips:

    python corpus.py                      # the default: 24 clips from 5 packages
    python corpus.py --songs 40 --clips-per-track 2
    python experiment.py --songs data/corpus/clips --name corpus
"""
from dae import cli, config
from dae.corpus import build, summary_markdown

PACKAGES = "singularity-music,hyperrogue-music,drascula-music,warzone2100-music,asc-music"  # wesnoth-music is kept aside
SONGS = 24              # clips in the corpus, round robin over the packages
OFFSET_SECONDS = 30.0   # each clip starts this far into its track
CLIP_SECONDS = 30.0     # as the original's ~30 s clips
CLIPS_PER_TRACK = 1     # more: non-overlapping clips of a long track
OUT_DIR = "data/corpus"


def main():
    cfg = cli.parse(config.Corpus, globals())
    entries, skipped = build(cfg)
    print(summary_markdown(entries))
    print(f"corpus: {len(entries)} clips from {len({e['package'] for e in entries})} packages in "
          f"{cfg.out_dir}/clips ({len(skipped)} tracks too short); "
          f"next: python experiment.py --songs {cfg.out_dir}/clips --name corpus")


if __name__ == "__main__":
    cli.run(main)
