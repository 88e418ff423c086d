"""Installable package holding the code the numbered pipeline scripts share."""
from setuptools import find_packages, setup

setup(
    name="scdecg",
    version="0.1.0",
    description=(
        "Open reproduction of the ECG sudden-cardiac-death pipeline "
        "(Obermeyer et al., Nature 2026): cohort, biomarker, ResNet risk models, DR-VAE morphing."
    ),
    package_dir={"": "src"},
    packages=find_packages("src"),
    python_requires=">=3.11",
    install_requires=[
        "numpy>=1.26",
        "pandas>=2.1",
        "pyarrow>=14",
        "scipy>=1.11",
        "scikit-learn>=1.3",
        "torch>=2.2",
        "neurokit2>=0.2.7",
        "statsmodels>=0.14",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "wfdb>=4.1",
    ],
)
