"""What the parse pool's fork server holds before it forks a worker; owns nothing else.

Imported only as that server's preload (``fileread.py``, ``set_forkserver_preload``),
never by feedsvc itself: importing this module sets the server up and loads every
module that reading a file needs and lingua's trigram models
(``language.load_models``: 18 MB, 0.07 s), once. Each worker is then a fork of a
warm process: it starts in milliseconds instead of half a second of imports, and
shares the models with its siblings. (A worker that meets a sample too short for
the trigram models alone loads lingua's models of every length itself, once:
1.3 s and 200 MB; ``normalise/language.py``.) The fork server is
single-threaded, so forking it is safe where forking the scan's own (possibly
threaded) process is not.

The server follows the rules of every feedsvc child process (``budget.py``):
it dies with the scan's process, however that dies, and never holds its
standard output or error. (Its workers die with it: ``budget.server_setup``.)
"""

from __future__ import annotations

from feedsvc import budget

# The server's parent is the scan's process, which started it (multiprocessing
# spawns the server from the thread that first asks for a worker).
budget.server_setup()

from feedsvc import fileread  # noqa: E402, F401  # every module a file needs, imported once
from feedsvc.normalise.language import load_models  # noqa: E402

load_models()
