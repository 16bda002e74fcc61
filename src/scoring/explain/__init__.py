"""TreeSHAP contributions from the booster and reasons in Chinese from the catalog templates."""
