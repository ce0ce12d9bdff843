"""fairflip: minority collective action for fairness."""
