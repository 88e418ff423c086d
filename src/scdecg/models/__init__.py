"""Risk models: the published ResNet, its heads, and model folders on disk."""
from .resnet import ResNet1d, final_length
from .risk import Architecture, CumulativeHorizons, RiskModel, build_model, count_parameters
from .store import CONFIG_FILE, WEIGHTS_FILE, load_state_checked, load_trained, save_trained

__all__ = ["Architecture", "CONFIG_FILE", "CumulativeHorizons", "ResNet1d", "RiskModel",
           "WEIGHTS_FILE", "build_model", "count_parameters", "final_length",
           "load_state_checked", "load_trained", "save_trained"]
