"""Optimisation and analysis steps; each module registers its steps (see recipe.STEP_MODULES)."""
