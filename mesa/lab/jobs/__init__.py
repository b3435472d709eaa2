"""Background jobs: the queue, its child worker process, the tasks it runs, their history, and the
machine lock that keeps one heavy job at a time."""
