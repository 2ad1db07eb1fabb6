//! Tests named after the seed promises.
