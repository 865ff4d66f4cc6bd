"""Training a bi-encoder on a run's rows: the losses (MNRL, MarginMSE and the teacher-distilling combinations),
the teacher's scores they read, and the trainer. `synthgen train` and `synthgen eval` both train through here."""
