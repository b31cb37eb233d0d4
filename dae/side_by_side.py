"""Run chains of stages side by side: one process per chain, one core each (pipeline.py's R-F and R).

    side_by_side.run([("R-F", r_f_steps), ("R", r_steps)], first=2, total=20)

A chain is a list of (title, stage function, its config); its stages run in
order in a process of its own (spawned, so no parent's TensorFlow is
inherited), with one Keras-backend thread (`trials.limit_threads`): on two
cores two single-threaded trainings run about 1.6 times as fast as one
after the other with two threads each, and each run gives the numbers it
gives in an experiment's trial (one thread too). Every line a chain prints
comes whole, after its label (``R-F | ...``); a progress bar redrawn in
place is shown as a line at most every `EVERY` seconds. The first stage
that fails (its UserError, or anything else) is raised here once the other
chains have finished the stage they are in (they start no other), so
nothing is left half-written and the error is the pipeline's one line.
"""
import io
import multiprocessing as mp
import sys
import time
from concurrent import futures

EVERY = 10.0      # seconds between two lines of one progress bar redrawn in place


class Labelled(io.TextIOBase):
    """A text stream that writes every whole line to `stream` after `label | `; a line ended by a
    carriage return (a bar redrawn in place) is written at most every `every` seconds. Not a
    terminal (isatty is False), so progress that asks prints a line per epoch."""

    def __init__(self, stream, label, every=EVERY, clock=time.monotonic):
        self.stream, self.label, self.every, self.clock = stream, label, every, clock
        self.pending, self.shown = "", -float("inf")

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, text):
        self.pending += text
        while True:
            cut = min((i for i in (self.pending.find("\n"), self.pending.find("\r")) if i >= 0), default=-1)
            if cut < 0:
                return len(text)
            line, end, self.pending = self.pending[:cut], self.pending[cut], self.pending[cut + 1:]
            if end == "\r":
                now = self.clock()
                if now - self.shown < self.every or not line.strip():
                    continue
                self.shown = now
            self.stream.write(f"{self.label} | {line.rstrip()}\n")
            self.stream.flush()

    def flush(self):
        self.stream.flush()


_stop = None     # the chains' shared "a stage failed: start no other" flag, in each worker


def _start(stop, threads):
    global _stop
    _stop = stop
    from dae import trials
    trials.limit_threads(threads)        # before the Keras backend loads in this process


def _chain(label, steps):
    """Run `steps` [(number, title, function, config)] in order in this worker, each line labelled."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Labelled(out, label), Labelled(err, label)
    try:
        for number, title, function, cfg in steps:
            if _stop.is_set():
                return
            print(f"== [{number}] {title}", file=out, flush=True)
            try:
                function(cfg)
            except BaseException:
                _stop.set()
                raise
    finally:
        sys.stdout.flush()
        sys.stdout, sys.stderr = out, err


def run(chains, first=1, total=None, threads=1):
    """Run `chains` [(label, [(title, function, config)])] side by side; their stages are numbered
    from `first` of `total` in the chains' order. Returns when every chain has ended; raises the
    first failure."""
    numbered, number = [], first
    for label, steps in chains:
        numbered.append((label, [(f"{number + i}/{total}" if total else f"{number + i}", *step)
                                 for i, step in enumerate(steps)]))
        number += len(steps)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    with futures.ProcessPoolExecutor(len(chains), mp_context=ctx, initializer=_start,
                                     initargs=(stop, threads)) as pool:
        running = [pool.submit(_chain, label, steps) for label, steps in numbered]
        failure = None
        for done in futures.as_completed(running):
            if failure is None and done.exception() is not None:
                failure = done.exception()
                stop.set()
    if failure is not None:
        raise failure
