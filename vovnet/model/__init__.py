"""Model layer: loading Qwen3-VL, the tiny local model, prompts, vision budgets, the policy head."""
