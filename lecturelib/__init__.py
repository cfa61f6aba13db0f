"""lecturelib: the helper library of the course "Pruning: from a weighted sum to lottery tickets".

Import the concept modules you need, e.g. ``from lecturelib import data, models, training, pruning``.
Each module's docstring names the chapter (``notebooks/NN_*.ipynb``) that explains it.
"""

__version__ = "0.3.0"   # the bootstrap cell of every notebook installs the tag v<this> (tests/test_colab.py)
