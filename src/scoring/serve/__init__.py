"""The FastAPI service: evaluations with explanations, for banks, analysts and regulators."""
