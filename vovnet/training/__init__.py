"""Training layer: encoding records per action, losses, the two-stage accelerate loop."""
