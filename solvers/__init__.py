"""Oracle solvers of the bilevel flip problem (installed as ``fairflip.solvers``)."""
from . import stealth  # noqa: F401  (registers oracle-stealth)
from . import convex  # noqa: F401  (registers oracle-convex)

from . import exact, relaxed  # noqa: F401  (importing registers greedy, brute-force and oracle-relaxed)
