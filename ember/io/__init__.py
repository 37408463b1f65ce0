"""Files: model checkpoints (safetensors + versioned metadata) and atomic writes."""

from .atomic import atomic_path, write_bytes_atomic, write_text_atomic
from .checkpoint import CheckpointError, load_into, load_model, read_checkpoint, save_checkpoint

__all__ = [
    "CheckpointError", "atomic_path", "load_into", "load_model", "read_checkpoint", "save_checkpoint",
    "write_bytes_atomic", "write_text_atomic",
]
