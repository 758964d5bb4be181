//! The orchestrator's pure rules: no I/O, no clocks (times are passed in).

pub mod cron;
pub mod dag;
pub mod parse;
pub mod pipeline;
pub mod retry;
pub mod state;
pub mod template;
