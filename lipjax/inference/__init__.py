"""Inference: generate() and the weights it loads."""
