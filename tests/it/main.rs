//! End-to-end tests: one binary, one module per theme (ripgrep's and delta-rs' layout).

mod cli;
mod common;
mod deliveries;
mod golden;
mod reconcile;
mod reject_codes;
