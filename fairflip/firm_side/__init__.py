"""Firm-side fairness: what a firm could do itself for equalized odds, the comparison for collective action.

Each method trains on the *original* labels with the same prepared features as the collective's firm:

- ``threshold-optimizer``: fairlearn's ThresholdOptimizer (equalized odds) over the prefit firm;
- ``exponentiated-gradient``: fairlearn's ExponentiatedGradient reduction with EqualizedOdds over the firm;
- ``reweighing``: Kamiran and Calders' (group, label) cell weights;
- ``calibrated-eqodds``: Pleiss et al.'s calibrated equalized odds post-processing (our implementation).

``plain`` is the unchanged firm, the reference of every comparison. :class:`FirmClassifier` puts any firm behind
scikit-learn's binary-classifier interface (what fairlearn's methods wrap).
"""

from ._estimator import FirmClassifier
from .calibrated_eqodds import COSTS, CalibratedEqualizedOdds, GroupPlattCalibrator, generalized_cost
from .compare import FIRM_SIDE_METHODS, PLAIN, FirmSideMethod, firm_side_table, run_firm_side
from .reweighing import reweighing_weights

__all__ = [
    "COSTS", "CalibratedEqualizedOdds", "FIRM_SIDE_METHODS", "FirmClassifier", "FirmSideMethod",
    "GroupPlattCalibrator", "PLAIN", "firm_side_table", "generalized_cost", "reweighing_weights", "run_firm_side",
]
