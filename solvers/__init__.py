"""Oracle solvers of the bilevel flip problem (installed as ``fairflip.solvers``)."""
from . import convex  # noqa: F401  (registers oracle-convex)
