"""Oracle solvers of the bilevel flip problem (installed as ``fairflip.solvers``)."""
