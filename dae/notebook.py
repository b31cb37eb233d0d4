"""Run a notebook top to bottom, headless, for one song.

    python -m dae.notebook divergence_plots.ipynb --song mysong

The notebook file is left as it is; what its cells print is printed here. The
settings below go to the notebook as the environment variables DAE_SONG,
DAE_DATA_DIR and DAE_OUTPUT_DIR, which its first cell reads (without them it
uses settings.py's). A cell that stops on bad input (a UserError: no
divergence results for the song yet, a stale result) ends the run with that
one line and exit status 1, after what the cells before it printed; any other
error is a bug and keeps its traceback.
"""
import os
import sys
import time
from pathlib import Path

from dae.errors import UserError

ENVIRONMENT = {"SONG": "DAE_SONG", "DATA_DIR": "DAE_DATA_DIR", "OUTPUT_DIR": "DAE_OUTPUT_DIR"}


def printed(nb):
    """What the code cells of an executed notebook printed to stdout."""
    return "".join(o["text"] for cell in nb.cells if cell.cell_type == "code"
                   for o in cell.get("outputs", []) if o.get("name") == "stdout")


def execute(path, cwd=".", timeout=600):
    """Execute every cell of the notebook at `path` in a fresh kernel; returns its printed text.

    A cell that raises a UserError stops it: a UserError with that message is
    raised here, its `printed` attribute the text printed until then.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    if not Path(path).is_file():
        raise UserError(f"no notebook at {path}")
    nb = nbformat.read(path, as_version=4)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}},
                       extra_arguments=["--IPKernelApp.log_level=ERROR"]).execute()  # not its TCP notice
    except CellExecutionError as e:
        if e.ename != "UserError":
            raise
        error = UserError(e.evalue)
        error.printed = printed(nb)
        raise error from None
    return printed(nb)


def main(argv=None):
    import settings
    from dae import cli
    argv = sys.argv[1:] if argv is None else list(argv)
    path = argv.pop(0) if argv and not argv[0].startswith("-") else "divergence_plots.ipynb"
    namespace = {"__file__": __file__, "__doc__": __doc__,
                 **{name: getattr(settings, name) for name in ENVIRONMENT}}
    cfg = cli.configure(namespace, argv)
    os.environ.update({variable: str(cfg[name]) for name, variable in ENVIRONMENT.items()})
    t0 = time.time()
    try:
        text = execute(path)
    except UserError as e:
        print(getattr(e, "printed", ""), end="", flush=True)
        raise
    print(text, end="")
    print(f"ran {path} in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    from dae import cli
    cli.run(main)
