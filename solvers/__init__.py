"""Oracle solvers of the bilevel flip problem (installed as ``fairflip.solvers``)."""
from . import stealth  # noqa: F401  (registers oracle-stealth)
from . import convex  # noqa: F401  (registers oracle-convex)

from . import exact, portfolio, relaxed  # noqa: F401  (register greedy, brute-force, oracle, oracle-relaxed)
from . import certified  # noqa: F401  (registers oracle-certified)
