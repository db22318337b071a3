"""Jet data: generation (Pythia 8 + FastJet), ROOT/HDF5/parquet reading, model-ready tensors."""
