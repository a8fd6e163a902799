"""What the operator sees of a running gateway: request ids, logs and metrics."""
