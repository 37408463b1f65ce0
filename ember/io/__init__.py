"""Files: model checkpoints (safetensors + versioned metadata), training states to resume from, atomic writes."""

from .atomic import atomic_path, write_bytes_atomic, write_text_atomic
from .checkpoint import CheckpointError, load_into, load_model, read_checkpoint, save_checkpoint
from .train_state import load_train_state, read_train_state, save_train_state

__all__ = [
    "CheckpointError", "atomic_path", "load_into", "load_model", "load_train_state", "read_checkpoint",
    "read_train_state", "save_checkpoint", "save_train_state", "write_bytes_atomic", "write_text_atomic",
]
