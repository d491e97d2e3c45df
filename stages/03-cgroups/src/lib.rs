//! # Stage 03: cgroups (being written)
