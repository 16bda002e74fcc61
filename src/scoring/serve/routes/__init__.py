"""The API's routes, one module per resource; ``scoring.serve.app`` includes their routers."""
