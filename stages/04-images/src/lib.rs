//! # Stage 04: layered images (being written)
//!
//! Modules are added by the work in progress: `reference`, `digest`, `store`, `layer`,
//! `archive` (docker-archive and OCI layout), `dockerfile`.
