//! gitops-flow: promote service versions through environments in a GitOps repository.

pub mod config;
pub mod error;
pub mod manifest;
pub mod names;
