//! The memory allocator every Plinth binary uses, chosen once here.
//!
//! Under concurrent load glibc's malloc serializes the tokio workers on its arena locks (the registry
//! benchmark measured about 12 % of CPU in those locks, and a p99 above 1 ms because of them); mimalloc
//! keeps per-thread heaps. Each binary declares it in its `main.rs`:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: plinth_runtime::allocator::Allocator = plinth_runtime::allocator::Allocator;
//! ```

/// The allocator for `#[global_allocator]` (a unit struct: the type and its value share the name).
pub use mimalloc::MiMalloc as Allocator;
