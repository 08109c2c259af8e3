"""Pieces the receiver, the model registry and the model server all use (errors, SQL script splitting),
kept outside the three so that package edges point one way: ``model_registry`` and ``model_server`` never
import ``receiver``."""
