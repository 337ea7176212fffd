"""Categories: a user's labels for tasks."""
