"""The model kinds' names, apart from the engine's NumPy and SciPy code: the app's models
(loaded by every `django.setup()`) name them without importing the engine."""

ALS, BPR, COOCCURRENCE, POPULARITY = "als", "bpr", "cooccurrence", "popularity"
KINDS = (ALS, BPR, COOCCURRENCE, POPULARITY)
