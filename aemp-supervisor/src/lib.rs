//! Supervision trees for aemp (placeholder).
