"""Running jobs on a Ray cluster (issue 17): a job splits into units (backend.stages.base.job_units)."""
