//! End-to-end tests: one binary, one module per theme (ripgrep's and delta-rs' layout).

mod bi_readers;
mod cli;
mod cloud;
mod common;
mod deliveries;
mod durability;
mod exports;
mod golden;
mod ledger;
mod publish;
mod reconcile;
mod reject_codes;
