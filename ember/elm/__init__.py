"""Forward-only learning: closed-form ridge readouts, random and PCA features, deep ELM, local rules."""

from .solver import MemoryBudgetError, RidgeAccumulator, SingularGramWarning, one_hot, ridge

__all__ = ["MemoryBudgetError", "RidgeAccumulator", "SingularGramWarning", "one_hot", "ridge"]
