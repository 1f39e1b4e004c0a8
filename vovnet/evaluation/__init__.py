"""Evaluation layer: generation with the policy, benchmark protocols, baselines and the Pareto sweep."""
