"""scikit-learn models: the item classifier and the pair scorer. Imports tracker.domain at most."""
