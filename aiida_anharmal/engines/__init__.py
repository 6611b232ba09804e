"""Programs run by the calculation jobs (console scripts): read input files, write output files."""
