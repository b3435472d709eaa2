"""Run storage: run folders, the stages' files inside them (saved as a set), the shipped ready runs,
clean bases and recorded results."""
