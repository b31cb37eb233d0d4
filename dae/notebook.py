"""Run a notebook top to bottom, headless, for one song.

    python -m dae.notebook divergence_plots.ipynb --song mysong

The notebook file is left as it is; what its cells print is printed here. The
settings given (`dae.config.Notebook`: SONG, DATA_DIR, OUTPUT_DIR, on the
command line or by pipeline.py) go in as a cell after its cell tagged
"parameters" (as papermill does), the folders made absolute; the others stay
the notebook's own (settings.py's). The kernel runs in the notebook's folder. A cell that stops on bad input (a
UserError: no divergence results for the song yet, a stale result) ends the
run with that one line and exit status 1, after what the cells before it
printed; any other error is a bug and keeps its traceback.
"""
import sys
import time
from pathlib import Path

from dae import config
from dae.errors import UserError


def printed(nb):
    """What the code cells of an executed notebook printed to stdout."""
    return "".join(o["text"] for cell in nb.cells if cell.cell_type == "code"
                   for o in cell.get("outputs", []) if o.get("name") == "stdout")


def inject(nb, parameters):
    """Put a code cell that sets `parameters` (name -> value, given as Python literals) right after
    the notebook's cell tagged "parameters" (at the top when it has none)."""
    import nbformat
    source = "# injected parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    nb.cells.insert(tagged[0] + 1 if tagged else 0, cell)
    return nb


def execute(path, parameters=None, timeout=600):
    """Execute every cell of the notebook at `path` in a fresh kernel in its folder, with `parameters`
    (name -> value) injected after its parameters cell; returns the text it printed.

    A cell that raises a UserError stops it: a UserError with that message is
    raised here, its `printed` attribute the text printed until then.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no notebook at {path}")
    nb = nbformat.read(path, as_version=4)
    if parameters:
        inject(nb, parameters)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.resolve().parent)}},
                       extra_arguments=["--IPKernelApp.log_level=ERROR"]).execute()  # not its TCP notice
    except CellExecutionError as e:
        if e.ename != "UserError":
            raise
        error = UserError(e.evalue)
        error.printed = printed(nb)
        raise error from None
    return printed(nb)


FIGURES = ("divergence.png", "smoothness_R_vs_R-F.png")   # what divergence_plots.ipynb draws, in outputs/<song>/


def made_from(path, cfg: config.Notebook, parameters):
    """What a run of the notebook at `path` for cfg's song reads: the notebook, the project's code and
    settings.py, the parameters given, and every run's divergence results and embedding (by sha256)."""
    from dae import layout, provenance
    data = Path(cfg.data_dir) / layout.song_name(cfg.song) / "runs"
    read = sorted([*data.glob("*/divergence_*.npz*"), *data.glob("*/embedding.npz*")])
    project = Path(__file__).resolve().parents[1] / "settings.py"
    return {"notebook": provenance.file_hash(path), "code": provenance.code_hash(), "parameters": parameters,
            "settings.py": provenance.file_hash(project) if project.is_file() else None,
            "inputs": {p.relative_to(data).as_posix(): provenance.file_hash(p) for p in read}}


def stamp_path(cfg: config.Notebook):
    """The record of the notebook's last complete run for cfg's song: what it read and drew."""
    from dae import layout
    return Path(cfg.output_dir) / layout.song_name(cfg.song) / ".divergence_plots.json"


def drawn(cfg: config.Notebook):
    """{figure name: sha256} of the notebook's figures there now for cfg's song."""
    from dae import layout, provenance
    folder = Path(cfg.output_dir) / layout.song_name(cfg.song)
    return {name: provenance.file_hash(folder / name) for name in FIGURES if (folder / name).is_file()}


def run(path, cfg: config.Notebook, names=None):
    """Execute the notebook at `path` for the song of `cfg` and print what it printed and how long
    it took. names : the settings given to it (default all; its folders made absolute here); the
    others are its parameters cell's own (settings.py's). When its last complete run read the same
    inputs with the same notebook, code and settings, and its figures are the ones it drew, it says
    so in one line and is skipped."""
    import json
    from dae import store
    values = {"song": cfg.song, "data_dir": str(Path(cfg.data_dir).resolve()),
              "output_dir": str(Path(cfg.output_dir).resolve())}
    parameters = {name.upper(): value for name, value in values.items() if names is None or name in names}
    before = made_from(path, cfg, parameters)
    stamp = stamp_path(cfg)
    try:
        last = json.loads(stamp.read_text())
    except (OSError, ValueError):
        last = None
    if last == {"made_from": before, "figures": drawn(cfg)} and last["figures"]:
        print(f"{Path(path).name}: {' and '.join(last['figures'])} up to date (same inputs, settings and code), "
              "skipped", flush=True)
        return
    t0 = time.time()
    try:
        text = execute(path, parameters)
    except UserError as e:
        print(getattr(e, "printed", ""), end="", flush=True)
        raise
    print(text, end="")
    print(f"ran {path} in {time.time() - t0:.1f} s")
    if made_from(path, cfg, parameters) == before and stamp.parent.is_dir():   # nothing changed while it ran
        store.save_json(stamp, {"made_from": before, "figures": drawn(cfg)})


def main(argv=None):
    """The command line: [NOTEBOOK] [--song ...] [--data-dir ...] [--output-dir ...]. Only the settings
    given on it go into the notebook; the rest are its own (settings.py's)."""
    from dae import cli
    argv = sys.argv[1:] if argv is None else list(argv)
    path = argv.pop(0) if argv and not argv[0].startswith("-") else "divergence_plots.ipynb"
    cfg = cli.parse(config.Notebook, argv=argv, prog="python -m dae.notebook", doc=__doc__)
    given = {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}  # no abbreviations: exact
    run(path, cfg, names=given & set(config.Notebook.names()))


if __name__ == "__main__":
    from dae import cli
    cli.run(main)
