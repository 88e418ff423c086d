"""scdecg: shared code of the ECG sudden-cardiac-death reproduction.

The numbered scripts under ``00_Data_Preprocessing/``, ``01_Predictive_Model/`` and
``02_Morphing/`` are thin: constants, argument parsing and calls into this package.
"""

__version__ = "0.1.0"
