"""Running a training job: building the parts from a config, the run folder, loggers, sweep tables."""
