"""Inference layer: predict answers with only the branch the policy chooses."""
