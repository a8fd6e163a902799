"""``GET /v1/requests``: one record per model call, read from the stored spans."""
