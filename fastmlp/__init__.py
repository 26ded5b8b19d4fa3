from .network import Network, TrainingDiverged
