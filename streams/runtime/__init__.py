"""Runtime: the broker, the faust app and workers, and the commands that orchestrate them."""
