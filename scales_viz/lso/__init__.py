"""Latent-space optimisation: optimisers, the run store, importers and exporters."""
