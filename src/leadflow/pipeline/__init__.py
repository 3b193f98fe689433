"""The pipeline engine: the jobs that move a lead from ``received`` to its last stage."""
