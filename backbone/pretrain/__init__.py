"""Self-supervised pretraining objectives around the jet encoder."""
