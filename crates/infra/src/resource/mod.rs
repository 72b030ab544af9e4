//! What every resource's storage adapter gets: tracing around its calls.

mod traced;

pub use traced::TracedRepository;
