"""The stylization job as a user sees it: options, launch checks, the graph, the run summary."""
