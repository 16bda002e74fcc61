"""The registered model: what is stored in MLflow and how it turns features into a decision."""
