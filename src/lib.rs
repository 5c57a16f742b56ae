//! `incentives`: the nightly batch job of a channel-partner incentives program.
//!
//! The modules follow the data: [`feeds`] reads and validates the landing zone, [`config`]
//! describes the programs, [`reports`] writes what finance and BI read, and [`run`]
//! orchestrates one run date. [`store`] is the only place that knows about locations.

pub mod allocator;
pub mod cli;
pub mod config;
pub mod decimal;
pub mod direct_io;
pub mod error;
pub mod feeds;
pub mod generate;
pub mod hash;
pub mod publish;
pub mod reports;
pub mod rules;
pub mod run;
pub mod store;
pub mod text;

pub use error::{Error, Result};
