"""`python -m interview_sim` is the `interview-sim` command."""

from interview_sim.cli import main

main()
