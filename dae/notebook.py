"""Run a notebook top to bottom, headless: ``python -m dae.notebook divergence_plots.ipynb``.

The notebook file is left as it is; what its cells print is printed here.
"""
import sys
import time


def execute(path, cwd=".", timeout=600):
    """Execute every cell of the notebook at `path` in a fresh kernel; returns its printed text."""
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if o.get("name") == "stdout":
                out.append(o["text"])
    return "".join(out)


if __name__ == "__main__":
    t0 = time.time()
    print(execute(sys.argv[1]), end="")
    print(f"ran {sys.argv[1]} in {time.time() - t0:.1f} s")
