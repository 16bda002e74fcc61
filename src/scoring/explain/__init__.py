"""Explanations from the booster's own TreeSHAP: the summary plot of a test set with Chinese labels.

The reasons of one decision are in :mod:`scoring.domain.reasons`.
"""
