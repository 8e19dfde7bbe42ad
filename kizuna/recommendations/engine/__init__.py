"""Pure recommendation engine (NumPy/SciPy/implicit, no database): the interaction matrix,
training of each model kind, ranking with exclusions and diversity, offline evaluation."""
