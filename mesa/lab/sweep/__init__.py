"""The sweep: a plan of cases, each case run stage by stage (resumable), executors, and its table."""
