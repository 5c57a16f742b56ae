//! `incentives`: the nightly batch job of a channel-partner incentives program.
//!
//! The modules follow the data: [`feeds`] reads and validates the landing zone, [`config`]
//! describes the programs, [`rules`] computes eligibility, earnings and payouts, `reports`
//! writes what finance and BI read, and `run` orchestrates one run date. [`store`] is the only
//! place that knows about locations.
//!
//! What is `pub` here is what the binary and the end-to-end tests use; everything else is
//! `pub(crate)`, so that rustc reports what nothing uses.

mod allocator;
pub mod cli;
pub mod config;
pub mod decimal;
pub mod digest;
pub mod error;
pub mod feeds;
pub mod generate;
mod hash;
mod ledger;
mod logs;
pub mod model;
mod progress;
mod publish;
mod reports;
pub mod rules;
mod run;
pub mod store;
#[cfg(test)]
mod testing;
mod text;

pub use error::{Error, Result};
