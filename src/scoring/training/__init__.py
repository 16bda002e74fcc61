"""Model specifications, training and validation."""
