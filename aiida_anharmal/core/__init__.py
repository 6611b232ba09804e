"""Pure physics and numerics: numpy / torch / ASE only, never AiiDA."""
