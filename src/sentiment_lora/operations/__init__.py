"""Operations: the model registry, the artifacts root and preflight checks."""
