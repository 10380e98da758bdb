"""The main job as one command: plan a recipe from a goal (model, task, target, deadline, allowed drop, size,
budget), run the six steps, check the goal against the validate step's measurements, write the report."""
from .plan import Goal, GoalImpossible, Plan, plan
from .run import OptimizeResult, check_outcome, optimize

__all__ = ["Goal", "GoalImpossible", "Plan", "OptimizeResult", "plan", "optimize", "check_outcome"]
