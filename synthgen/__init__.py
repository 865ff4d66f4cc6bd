"""synthgen: validated, provenance-tracked hard negatives for dense retriever training."""

__version__ = "0.1.0"
