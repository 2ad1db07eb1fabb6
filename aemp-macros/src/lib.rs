//! Derive macros for aemp (placeholder).
